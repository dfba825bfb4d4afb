"""`POST /v1/responses/compact` through the app: the model summarises the conversation (one
metered generation at the fake upstream), the answer lists the user messages and a sealed
`compaction` item, that item comes back in a later `input` as the summary, a changed item is
refused, and the refusals are OpenAI's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai.types.responses import ResponseCompactionItem

from cometgate.dialects.responses.compaction import SUMMARY_HEADER, SUMMARY_REQUEST
from cometgate.storage.database import open_database
from cometgate.storage.usage import UsageQueries
from tests.api.test_stored_responses import Gateway, _open, _settings
from tests.fakes.openai_upstream import Reply

SUMMARY = "The user is planning a trip to Lima in May and wants the weather."
CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "I am going to Lima in May."},
    {"role": "assistant", "content": "Lovely; what would you like to know?"},
    {"role": "user", "content": [{"type": "input_text", "text": "The weather, please."}]},
]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in _open(tmp_path):
        yield opened


async def _compact(http: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await http.post("/v1/responses/compact", json={"model": "gpt-fake", **body})


async def test_a_conversation_is_summarised_sealed_and_metered(
    gateway: Gateway, tmp_path: Path
) -> None:
    gateway.openai.replies.append(Reply(text=SUMMARY))
    async with gateway.http() as http:
        response = await _compact(http, input=CONVERSATION, instructions="Be brief.")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "response.compaction" and body["id"].startswith("resp_")
    *users, sealed = body["output"]
    assert [(u["type"], u["role"], u["content"][0]["text"]) for u in users] == [
        ("message", "user", "I am going to Lima in May."),
        ("message", "user", "The weather, please.")]
    item = ResponseCompactionItem.model_validate(sealed)
    assert item.type == "compaction" and item.id.startswith("cmp_")
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (7, 5)
    sent = gateway.openai.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[-1] == {"role": "user", "content": SUMMARY_REQUEST}
    assert "I am going to Lima in May." in str(sent)
    await gateway.app.state.usage_log.flush()
    async with await open_database(_settings(tmp_path, None).database_url) as database:
        [record] = await UsageQueries(database).records()
    assert (record.dialect, record.status, record.prompt_tokens) == ("responses", 200, 7)


async def test_the_compaction_item_comes_back_as_the_summary(gateway: Gateway) -> None:
    gateway.openai.replies.append(Reply(text=SUMMARY))
    async with gateway.http() as http:
        compacted = (await _compact(http, input=CONVERSATION)).json()
        following = await http.post("/v1/responses", json={
            "model": "gpt-fake",
            "input": [*compacted["output"], {"role": "user", "content": "And in June?"}]})
    assert following.status_code == 200, following.text
    sent = gateway.openai.requests[-1]["messages"]
    assert {"role": "user", "content": SUMMARY_HEADER + SUMMARY} in sent
    assert sent[-1] == {"role": "user", "content": "And in June?"}
    assert "Lovely; what would you like to know?" not in str(sent)  # compacted away


async def test_tools_sent_with_a_compaction_are_declared_but_not_called(
    gateway: Gateway
) -> None:
    gateway.openai.replies.append(Reply(text=SUMMARY))
    weather = {"type": "function", "name": "weather", "parameters": {"type": "object"}}
    async with gateway.http() as http:
        response = await _compact(http, tools=[weather], input=[
            {"role": "user", "content": "Weather in Lima?"},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "Mild."}])
    assert response.status_code == 200, response.text
    sent = gateway.openai.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["weather"]
    assert sent["tool_choice"] == "none"


async def test_a_stored_conversation_is_compacted_by_its_id(gateway: Gateway) -> None:
    gateway.openai.replies += [Reply(text="Lima is mild in May."), Reply(text=SUMMARY)]
    first = await gateway.create(input="What is Lima like in May?")
    async with gateway.http() as http:
        response = await _compact(http, previous_response_id=first["id"])
    assert response.status_code == 200, response.text
    sent = str(gateway.openai.requests[-1]["messages"])
    assert "What is Lima like in May?" in sent and "Lima is mild in May." in sent
    assert [i["type"] for i in response.json()["output"]] == ["message", "compaction"]


async def test_a_changed_compaction_item_is_refused_before_any_upstream_call(
    gateway: Gateway
) -> None:
    gateway.openai.replies.append(Reply(text=SUMMARY))
    async with gateway.http() as http:
        compacted = (await _compact(http, input="Remember 42.")).json()
        sealed = compacted["output"][-1]
        token = sealed["encrypted_content"]
        changed = {**sealed, "encrypted_content": token[:-4] + ("AAAA" if token[-4:] != "AAAA"
                                                               else "BBBB")}
        calls = len(gateway.openai.requests)
        refused = await http.post("/v1/responses", json={"model": "gpt-fake",
                                                         "input": [changed]})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error",
                                               "input[0].encrypted_content")
    assert error["message"].startswith("Invalid 'input[0].encrypted_content': the encrypted "
                                       "content could not be verified")
    assert len(gateway.openai.requests) == calls


REFUSALS: list[tuple[dict[str, Any], int, str | None, str, str | None]] = [
    ({}, 400, "input", "Missing required parameter: 'input'.", None),
    ({"input": "x", "model": None}, 400, "model", "you must provide a model parameter", None),
    ({"input": "x", "model": "nope"}, 404, None, "The model `nope` does not exist",
     "model_not_found"),
    ({"previous_response_id": "resp_gone"}, 400, "previous_response_id",
     "Previous response with id 'resp_gone' not found.", "previous_response_not_found"),
    ({"input": [{"type": "compaction", "encrypted_content": 7}]}, 400,
     "input[0].encrypted_content", "Invalid 'input[0].encrypted_content'", None),
]


@pytest.mark.parametrize(("change", "status", "param", "message", "code"), REFUSALS,
                         ids=[str(i) for i in range(len(REFUSALS))])
async def test_compact_refusals_are_openai_errors(
    gateway: Gateway, change: dict[str, Any], status: int, param: str | None, message: str,
    code: str | None,
) -> None:
    body = {k: v for k, v in {"model": "gpt-fake", **change}.items() if v is not None}
    async with gateway.http() as http:
        response = await http.post("/v1/responses/compact", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"].startswith(message), error["message"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error", param, code)
    assert gateway.openai.requests == []
