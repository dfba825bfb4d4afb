"""Background Responses through the app: `background: true` answers at once, queued, and the
final Response is polled with GET; `POST /v1/responses/{id}/cancel`; one usage record per
background request; the refusals in OpenAI's envelope; and a response in flight when the
gateway stopped is failed at the next start. The fake upstream holds its answer on an event,
so every state is reached without timing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai.types.responses import Response

from cometgate.api.background_responses import RESTARTED
from cometgate.app import create_app
from cometgate.storage.conversations import ConversationStore
from cometgate.storage.database import open_database
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.api.test_stored_responses import Gateway, _open, _providers, _settings
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

REQUEST: dict[str, Any] = {"model": "gpt-fake", "input": "Say hello.", "background": True}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in _open(tmp_path):
        yield opened


async def _records(gateway: Gateway, tmp_path: Path) -> list[UsageRecord]:
    await gateway.app.state.usage_log.flush()
    async with await open_database(_settings(tmp_path, None).database_url) as database:
        return await UsageQueries(database).records()


def _error(response: httpx.Response, status: int, message: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": {"message": message, "type": "invalid_request_error",
                                         "param": param, "code": None}}


async def test_a_background_response_is_queued_then_polled_to_completed(
    gateway: Gateway, tmp_path: Path
) -> None:
    hold = asyncio.Event()
    gateway.openai.replies.append(Reply(text="Done in the background.", hold=hold))
    async with gateway.http() as http:
        created = await http.post("/v1/responses", json=REQUEST)
        assert created.status_code == 200, created.text
        queued = created.json()
        Response.model_validate(queued)
        assert (queued["status"], queued["background"], queued["output"],
                queued["usage"]) == ("queued", True, [], None)
        polled = (await http.get(f"/v1/responses/{queued['id']}")).json()
        assert polled["status"] in ("queued", "in_progress")
        hold.set()
        await gateway.app.state.background.settled()
        done = (await http.get(f"/v1/responses/{queued['id']}")).json()
    parsed = Response.model_validate(done)
    assert (parsed.status, parsed.background, parsed.output_text) == (
        "completed", True, "Done in the background.")
    assert done["usage"]["input_tokens"] == 7
    [record] = await _records(gateway, tmp_path)
    assert (record.dialect, record.status, record.prompt_tokens, record.output_tokens) == (
        "responses", 200, 7, 5)


async def test_cancel_stops_a_running_background_response(
    gateway: Gateway, tmp_path: Path
) -> None:
    hold = asyncio.Event()  # never set: the upstream is still answering when it is cancelled
    gateway.openai.replies.append(Reply(hold=hold))
    async with gateway.http() as http:
        queued = (await http.post("/v1/responses", json=REQUEST)).json()
        cancelled = await http.post(f"/v1/responses/{queued['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert Response.model_validate(cancelled.json()).status == "cancelled"
        await gateway.app.state.background.settled()
        assert (await http.get(f"/v1/responses/{queued['id']}")).json()["status"] == "cancelled"
        again = await http.post(f"/v1/responses/{queued['id']}/cancel")  # as OpenAI: the same
        assert again.status_code == 200 and again.json()["status"] == "cancelled"
    [record] = await _records(gateway, tmp_path)
    assert (record.status, record.failure_class, record.output_tokens) == (499, "cancelled", 0)


async def test_an_upstream_failure_is_a_stored_failed_response(
    gateway: Gateway, tmp_path: Path
) -> None:
    gateway.openai.replies.append(Reply(status=500, error_type="server_error"))
    async with gateway.http() as http:
        queued = (await http.post("/v1/responses", json=REQUEST)).json()
        await gateway.app.state.background.settled()
        failed = (await http.get(f"/v1/responses/{queued['id']}")).json()
    assert Response.model_validate(failed).status == "failed"
    assert failed["error"]["code"] == "server_error" and failed["error"]["message"]
    [record] = await _records(gateway, tmp_path)
    assert record.status >= 500 and record.failure_class is not None


async def test_what_cannot_be_cancelled(gateway: Gateway) -> None:
    synchronous = await gateway.create(input="Now.")
    async with gateway.http() as http:
        _error(await http.post(f"/v1/responses/{synchronous['id']}/cancel"), 400,
               "Cannot cancel a synchronous response.", None)
        finished = (await http.post("/v1/responses", json=REQUEST)).json()
        await gateway.app.state.background.settled()
        _error(await http.post(f"/v1/responses/{finished['id']}/cancel"), 400,
               "Cannot cancel a completed response.", None)
        gateway.openai.replies.append(Reply(finish_reason="length"))
        cut = (await http.post("/v1/responses", json=REQUEST)).json()
        await gateway.app.state.background.settled()
        _error(await http.post(f"/v1/responses/{cut['id']}/cancel"), 400,
               "Cannot cancel an incomplete response.", None)
        _error(await http.post("/v1/responses/resp_nothing/cancel"), 404,
               "Response with id 'resp_nothing' not found.", None)
    async with gateway.http("b") as http:  # another key's response does not exist for it
        _error(await http.post(f"/v1/responses/{finished['id']}/cancel"), 404,
               f"Response with id '{finished['id']}' not found.", None)


BACKGROUND_REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("a", {"store": False}, "background", "Background mode requires 'store' to be true."),
    ("a", {"stream": True}, "stream", "'stream' with 'background' is not supported: the "
     "gateway does not stream background responses; send 'background' without 'stream' and "
     "poll GET /v1/responses/{id}."),
    ("a", {"background": "yes"}, "background", "Invalid type for 'background': expected a "
     "boolean, but got a string instead."),
    ("quiet", {}, "background", "Background mode requires a stored response, and this gateway "
     "stores no responses for this key."),
]


@pytest.mark.parametrize(("key", "change", "param", "message"), BACKGROUND_REFUSALS,
                         ids=[str(i) for i in range(len(BACKGROUND_REFUSALS))])
async def test_background_refusals_are_openai_errors(
    gateway: Gateway, tmp_path: Path, key: str, change: dict[str, Any], param: str,
    message: str,
) -> None:
    async with gateway.http(key) as http:
        _error(await http.post("/v1/responses", json={**REQUEST, **change}), 400, message,
               param)
    assert gateway.openai.requests == []
    assert [r.status for r in await _records(gateway, tmp_path)] in ([], [400])


async def test_a_bad_background_request_is_refused_before_it_is_queued(
    gateway: Gateway
) -> None:
    async with gateway.http() as http:
        refused = await http.post("/v1/responses", json={
            **REQUEST, "tools": [{"type": "web_search"}]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tools"
    async with gateway.http() as http:
        built_in = await http.post("/v1/responses", json={
            **REQUEST, "tools": [{"type": "code_interpreter"}]})
    assert built_in.status_code == 400
    assert built_in.json()["error"]["param"] == "tools[0].type"
    async with gateway.http() as http:
        unknown = await http.post("/v1/responses", json={
            **REQUEST, "previous_response_id": "resp_gone"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "previous_response_not_found"
    assert gateway.openai.requests == []


async def test_a_response_in_flight_when_the_gateway_stopped_fails_at_the_next_start(
    tmp_path: Path,
) -> None:
    async for gateway in _open(tmp_path):
        gateway.openai.replies.append(Reply(hold=asyncio.Event()))  # still answering at stop
        async with gateway.http() as http:
            queued = (await http.post("/v1/responses", json=REQUEST)).json()
    # Stopping cancelled the generation, and recorded it once (the usage log is committed).
    async with await open_database(_settings(tmp_path, None).database_url) as database:
        [record] = await UsageQueries(database).records()
    assert (record.status, record.failure_class) == (499, "cancelled")
    settings = _settings(tmp_path, None)
    app = create_app(settings, providers=_providers(settings, FakeOpenAIUpstream(),
                                                    FakeAnthropicUpstream()))
    async with app.router.lifespan_context(app):  # the next start
        async with await open_database(settings.database_url) as database:
            [turn] = await ConversationStore(database, retention=timedelta(days=1)).list()
    assert (turn.id, turn.status) == (queued["id"], "failed")
    assert turn.body["error"] == {"code": "server_error", "message": RESTARTED}
    assert Response.model_validate(turn.body).status == "failed"
