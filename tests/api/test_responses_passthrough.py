"""A Responses caller's request forwarded as it is to an OpenAI-compatible upstream that
declares `responses_api: true`: only the model is rewritten, the answer and the stream come
back byte for byte, and the usage record reads the upstream's own usage."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from cometgate.app import create_app
from cometgate.providers.openai_upstream import ResponsesOpenAIUpstream, http_provider
from cometgate.providers.registry import openai_options
from cometgate.settings import OpenAIProviderSettings, load_settings
from tests.api.conftest import AppWithRecords, create_key
from tests.conftest import FAKE_MODELS_YAML
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

MODEL = "smollm2-135m-instruct"
REQUEST: dict[str, Any] = {"model": MODEL, "input": "Say hello.", "instructions": "Be brief.",
                           "some_future_field": {"kept": True}}
EVENTS = TypeAdapter[ResponseStreamEvent](ResponseStreamEvent)


@pytest.fixture
async def gateway(tmp_path: Path, upstream: FakeOpenAIUpstream
                  ) -> AsyncIterator[AppWithRecords]:
    config = tmp_path / "cometgate.yaml"
    config.write_text(FAKE_MODELS_YAML.replace("supports_reasoning: true",
                                               "supports_reasoning: true, responses_api: true"),
                      encoding="utf-8")
    settings = load_settings(config, data_dir=tmp_path / "data", env={"HOME": str(tmp_path)})
    spec = settings.provider("fake")
    assert isinstance(spec, OpenAIProviderSettings) and spec.responses_api
    provider = http_provider("fake", base_url=spec.base_url, options=openai_options(spec),
                             timeouts=spec.timeouts, client=httpx.AsyncClient(
                                 transport=httpx.ASGITransport(app=upstream.app)))
    assert isinstance(provider, ResponsesOpenAIUpstream)
    key = await create_key(settings)
    app = create_app(settings, providers={"fake": provider})
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway",
            headers={"authorization": f"Bearer {key}"}) as http:
        yield AppWithRecords(http, app, settings)


async def test_a_whole_answer_is_forwarded(gateway: AppWithRecords,
                                           upstream: FakeOpenAIUpstream) -> None:
    response = await gateway.http.post("/v1/responses", json=REQUEST)
    assert response.status_code == 200, response.text
    assert upstream.requests[-1] == {**REQUEST, "model": MODEL}  # nothing but the model
    assert upstream.paths[-1] == "/v1/responses"
    body = response.json()
    assert body["id"].startswith("resp_fake")  # the upstream's own answer
    Response.model_validate(body)
    [record] = await gateway.records()
    assert (record.dialect, record.prompt_tokens, record.output_tokens) == ("responses", 7, 5)


async def test_a_stream_is_relayed_byte_for_byte(gateway: AppWithRecords,
                                                 upstream: FakeOpenAIUpstream) -> None:
    response = await gateway.http.post("/v1/responses", json={**REQUEST, "stream": True})
    assert response.status_code == 200
    direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app))
    async with direct:
        expected = await direct.post("http://fake/v1/responses",
                                     json={**REQUEST, "stream": True})
    # The same bytes but the upstream's response id, which counts up with each answer.
    assert re.sub(rb"resp_fake\d+", b"", response.content) == re.sub(
        rb"resp_fake\d+", b"", expected.content)
    assert b"resp_fake" in response.content
    [record] = await gateway.records()
    assert (record.stream, record.output_tokens, record.status) == (True, 5, 200)


async def test_a_relayed_stream_that_breaks_ends_with_error_then_failed(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(fail_mid_stream=True))
    response = await gateway.http.post("/v1/responses", json={**REQUEST, "stream": True})
    events = [orjson.loads(block.split("\ndata: ", 1)[1])
              for block in response.text.split("\n\n") if block.strip()]
    for event in events:
        EVENTS.validate_python(event)
    assert [e["type"] for e in events][-1] == "error"  # the upstream's own, relayed
    assert "response.completed" not in [e["type"] for e in events]
    [record] = await gateway.records()
    assert record.stream


async def test_an_upstream_refusal_reaches_the_caller_as_it_was(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(status=400, error_code="invalid_value"))
    response = await gateway.http.post("/v1/responses", json=REQUEST)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_value"


async def test_chat_completions_still_pass_through(gateway: AppWithRecords,
                                                   upstream: FakeOpenAIUpstream) -> None:
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "foo": 1}
    response = await gateway.http.post("/v1/chat/completions", json=chat)
    assert response.status_code == 200
    assert upstream.requests[-1] == chat
