"""The Responses dialect's entrance through the app, translated to the shared OpenAI-compatible
fake upstream: Response objects and event streams that the openai SDK's own types parse, tool
loops with function_call_output, token counts, every refusal in OpenAI's envelope, and the
same usage records as every dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from cometgate.settings import Settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.api.conftest import AppWithRecords, OpenAppWithRecords
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

MODEL = "smollm2-135m-instruct"
REQUEST: dict[str, Any] = {"model": MODEL, "instructions": "Be brief.", "input": "Say hello."}
EVENTS = TypeAdapter[ResponseStreamEvent](ResponseStreamEvent)
WEATHER = {"type": "function", "name": "weather", "description": "Weather now.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
async def gateway(open_app: OpenAppWithRecords, api_key: str) -> AsyncIterator[AppWithRecords]:
    async with open_app({"authorization": f"Bearer {api_key}"}) as opened:
        yield opened


def events(body: bytes) -> list[dict[str, Any]]:
    """Every SSE event, checked against its `event:` line and parsed by the SDK's types."""
    out = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        event_line, data_line = block.split("\n")
        payload = orjson.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {payload['type']}"
        EVENTS.validate_python(payload)
        out.append(payload)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


async def test_a_response_is_translated_there_and_back_with_one_record(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    response = await gateway.http.post("/v1/responses", json={**REQUEST, "metadata": {"a": "b"},
                                                              "temperature": 0.5})
    assert response.status_code == 200, response.text
    body = response.json()
    parsed = Response.model_validate(body)
    assert parsed.id.startswith("resp_") and parsed.object == "response"
    assert (parsed.status, parsed.model, parsed.output_text) == (
        "completed", MODEL, "Hello from the fake upstream.")
    [message] = body["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"][0]["annotations"] == []
    assert body["usage"] == {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 0,
                                                      "cache_write_tokens": 0},
                             "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                             "total_tokens": 12}
    assert (body["instructions"], body["metadata"], body["temperature"], body["store"]) == (
        "Be brief.", {"a": "b"}, 0.5, True)
    assert body["tools"] == [] and body["tool_choice"] == "auto"
    assert body["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    sent = upstream.requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Say hello."}]
    [record] = await gateway.records()
    assert (record.dialect, record.status, record.prompt_tokens) == ("responses", 200, 7)


async def test_without_v1_and_with_items(gateway: AppWithRecords,
                                         upstream: FakeOpenAIUpstream) -> None:
    items = [{"role": "developer", "content": "Answer in French."},
             {"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": "Hi"},
                          {"type": "input_image", "image_url": "data:image/png;base64,iVBORw=="}]},
             {"role": "assistant", "content": [{"type": "output_text", "text": "Salut"}]},
             {"role": "user", "content": "Again"}]
    response = await gateway.http.post("/responses", json={"model": "level-thinker",
                                                           "input": items})
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Answer in French."}
    assert sent[1]["content"][1]["image_url"]["url"] == "data:image/png;base64,iVBORw=="
    assert sent[2] == {"role": "assistant", "content": "Salut"}


async def test_max_output_tokens_makes_an_incomplete_response(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(finish_reason="length"))
    body = (await gateway.http.post("/v1/responses",
                                    json={**REQUEST, "max_output_tokens": 16})).json()
    assert body["status"] == "incomplete" and body["max_output_tokens"] == 16
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"
    sent = upstream.requests[-1]
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 16
    Response.model_validate(body)


async def test_a_tool_loop_with_function_call_output(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text=None, finish_reason="tool_calls",
                                  tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}]))
    request = {"model": MODEL, "input": "Weather in Oslo?", "tools": [WEATHER]}
    first = (await gateway.http.post("/v1/responses", json=request)).json()
    Response.model_validate(first)
    [call] = first["output"]
    assert call["type"] == "function_call" and call["status"] == "completed"
    assert call["id"].startswith("fc_") and call["call_id"]
    assert (call["name"], orjson.loads(call["arguments"])) == ("weather", {"city": "Oslo"})
    assert first["tools"][0]["name"] == "weather"
    follow_up = {**request, "input": [
        {"role": "user", "content": "Weather in Oslo?"}, call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "Sunny, 21 C"}]}
    response = await gateway.http.post("/v1/responses", json=follow_up)
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1]
    assert sent["tools"][0]["function"]["name"] == "weather"
    assistant, result = sent["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == result["tool_call_id"] == call["call_id"]
    assert result["role"] == "tool" and result["content"] == "Sunny, 21 C"


async def test_json_schema_and_reasoning_settings_reach_the_upstream(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    text = {"format": {"type": "json_schema", "name": "Count", "schema": schema,
                       "strict": True}}
    response = await gateway.http.post("/v1/responses", json={
        **REQUEST, "model": "level-thinker", "text": text,
        "reasoning": {"effort": "high", "summary": "auto"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"]["format"]["name"] == "Count"
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    sent = upstream.requests[-1]
    assert sent["response_format"]["json_schema"]["schema"] == schema
    assert sent["reasoning_effort"] == "high"


async def test_a_stream_is_the_whole_event_grammar(gateway: AppWithRecords) -> None:
    response = await gateway.http.post("/v1/responses", json={**REQUEST, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    seen = events(response.content)
    assert [e["type"] for e in seen] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", *["response.output_text.delta"] * 3,
        "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed"]
    text = "".join(e["delta"] for e in seen if e["type"] == "response.output_text.delta")
    assert text == "Hello from the fake upstream."
    final = seen[-1]["response"]
    assert final["usage"]["output_tokens"] == 5 and final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == text
    assert seen[0]["response"]["id"] == final["id"]
    [record] = await gateway.records()
    assert (record.dialect, record.stream, record.output_tokens) == ("responses", True, 5)


async def test_a_streamed_call_and_reasoning(gateway: AppWithRecords,
                                             upstream: FakeOpenAIUpstream) -> None:
    upstream.replies.append(Reply(text=None, finish_reason="tool_calls",
                                  tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}]))
    response = await gateway.http.post("/v1/responses", json={
        "model": MODEL, "input": "Weather?", "tools": [WEATHER], "stream": True})
    seen = events(response.content)
    kinds = [e["type"] for e in seen]
    assert kinds[2:6] == ["response.output_item.added", "response.function_call_arguments.delta",
                          "response.function_call_arguments.done", "response.output_item.done"]
    assert orjson.loads(seen[4]["arguments"]) == {"city": "Oslo"}
    assert seen[-1]["response"]["output"][0]["type"] == "function_call"


async def test_an_upstream_failure_mid_stream_ends_with_error_then_failed(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(fail_mid_stream=True))
    response = await gateway.http.post("/v1/responses", json={**REQUEST, "stream": True})
    seen = events(response.content)
    assert [e["type"] for e in seen][-2:] == ["error", "response.failed"]
    assert [e["type"] for e in seen].count("response.completed") == 0
    failed = seen[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    [record] = await gateway.records()
    assert record.status >= 500


async def test_input_tokens_counts_with_the_models_tokenizer(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    response = await gateway.http.post("/v1/responses/input_tokens", json=REQUEST)
    assert response.status_code == 200, response.text
    # The fake tokenizer counts words: "Be brief." and "Say hello."
    assert response.json() == {"object": "response.input_tokens", "input_tokens": 4}
    assert upstream.paths[-1] == "/tokenize"
    assert await gateway.records() == []  # a count is not a generation


async def test_a_stored_response_cannot_be_retrieved_yet(gateway: AppWithRecords) -> None:
    for method in ("GET", "DELETE"):
        response = await gateway.http.request(method, "/v1/responses/resp_123")
        assert response.status_code == 404
        assert response.json() == {"error": {
            "message": "Response with id 'resp_123' not found.",
            "type": "invalid_request_error", "param": None, "code": None}}


async def test_an_unknown_v1_route_is_openais_404(gateway: AppWithRecords) -> None:
    response = await gateway.http.post("/v1/responses/resp_1/compact_nothing", json={})
    assert response.status_code == 404
    assert response.json() == {"error": {
        "message": "Invalid URL (POST /v1/responses/resp_1/compact_nothing)",
        "type": "invalid_request_error", "param": None, "code": None}}
    google = await gateway.http.get("/v1/nothing", headers={"authorization": "",
                                                            "x-goog-api-key": "k"})
    assert google.status_code == 404 and google.json()["error"]["status"] == "NOT_FOUND"


REFUSALS: list[tuple[dict[str, Any], int, str | None, str]] = [
    ({"input": None}, 400, "input", "Missing required parameter: 'input'."),
    ({"model": None}, 400, "model", "you must provide a model parameter"),
    ({"model": "nope"}, 404, None, "The model `nope` does not exist or you do not have access"),
    ({"previous_response_id": "resp_1"}, 400, "previous_response_id",
     "Previous response with id 'resp_1' not found."),
    ({"previous_response_id": 7}, 400, "previous_response_id",
     "Invalid type for 'previous_response_id'"),
    ({"background": True, "store": False}, 400, "background",
     "Background mode requires 'store' to be true."),
    ({"conversation": "conv_1"}, 400, "conversation", "'conversation' is not supported"),
    ({"tools": [{"type": "web_search"}]}, 400, "tools",
     "The built-in tool 'web_search' is not available on models/"),
    ({"tools": [{"type": "code_interpreter"}]}, 400, "tools[0].type",
     "The built-in tool 'code_interpreter' is not supported"),
    ({"tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}, 400,
     "tool_choice.type", "The built-in tool 'web_search' is not supported"),
    ({"tools": [{"type": "namespace", "name": "crm", "description": "CRM", "tools": []}]}, 400,
     "tools[0].tools",
     "Invalid value for 'tools[0].tools': expected a non-empty array of function tools."),
    ({"tools": [{"type": "namespace", "name": "crm", "description": "CRM",
                 "tools": [{"type": "code_interpreter"}]}]}, 400, "tools[0].tools[0].type",
     "The built-in tool 'code_interpreter' is not supported"),
    ({"tools": [WEATHER], "tool_choice": {"type": "file_search"}}, 400, "tool_choice.type",
     "The built-in tool 'file_search' is not supported"),
    ({"temperature": 3}, 400, "temperature", "Invalid 'temperature': decimal above maximum"),
    ({"max_output_tokens": 5}, 400, "max_output_tokens",
     "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16"),
    ({"include": ["nothing"]}, 400, "include[0]", "Invalid value: 'nothing'."),
    ({"text": {"format": {"type": "yaml"}}}, 400, "text.format.type", "Invalid value: 'yaml'."),
    ({"reasoning": {"effort": "huge"}}, 400, "reasoning.effort", "Invalid value: 'huge'."),
    ({"input": [{"type": "file_search_call"}]}, 400, "input[0].type",
     "Input items of type 'file_search_call' are not supported"),
    ({"input": [{"type": "function_call_output", "call_id": "c1", "output": "x"}]}, 400,
     "input[0].call_id", "No tool call found for function call output with call_id c1."),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f1"}]}]}, 400,
     "input[0].content[0].file_id", "Invalid value for 'input[0].content[0].file_id'"),
    ({"stream_options": {"include_obfuscation": False}}, 400, "stream_options",
     "Invalid value for 'stream_options': 'stream_options' is only allowed when 'stream' is "
     "enabled."),
    ({"metadata": {"k": 1}}, 400, "metadata.k", "Invalid type for 'metadata.k'"),
    ({"audio": {"voice": "x"}}, 400, "audio", "audio is not supported by models/"),
]


@pytest.mark.parametrize(("change", "status", "param", "message"), REFUSALS,
                         ids=[str(i) for i in range(len(REFUSALS))])
async def test_refusals_are_openai_errors(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream, change: dict[str, Any], status: int,
    param: str | None, message: str,
) -> None:
    body = {k: v for k, v in {**REQUEST, **change}.items() if v is not None}
    response = await gateway.http.post("/v1/responses", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"].startswith(message), error["message"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert upstream.requests == []


async def test_tuning_fields_are_dropped_and_named(gateway: AppWithRecords) -> None:
    response = await gateway.http.post("/v1/responses", json={
        **REQUEST, "service_tier": "flex", "truncation": "auto", "parallel_tool_calls": False,
        "text": {"verbosity": "low"}})
    assert response.status_code == 200, response.text
    dropped = response.headers["x-cometgate-dropped"].split(",")
    assert set(dropped) == {"service_tier", "truncation", "parallel_tool_calls",
                            "text.verbosity"}
    assert response.json()["service_tier"] == "flex"


async def test_a_summary_on_a_model_that_does_not_think_is_dropped_and_named(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    response = await gateway.http.post("/v1/responses", json={
        **REQUEST, "reasoning": {"summary": "auto"}})
    assert response.status_code == 200, response.text
    assert response.headers["x-cometgate-dropped"] == "reasoning.summary"
    assert [item["type"] for item in response.json()["output"]] == ["message"]
    assert "reasoning_effort" not in upstream.requests[-1]
    streamed = await gateway.http.post("/v1/responses", json={
        **REQUEST, "stream": True, "reasoning": {"summary": "detailed"}})
    assert streamed.status_code == 200
    assert streamed.headers["x-cometgate-dropped"] == "reasoning.summary"
    assert events(streamed.content)[-1]["type"] == "response.completed"


async def test_an_effort_on_a_model_that_does_not_think_is_still_refused(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    response = await gateway.http.post("/v1/responses", json={
        **REQUEST, "reasoning": {"effort": "high", "summary": "auto"}})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert upstream.requests == []


@pytest.mark.parametrize(("translation", "status"), [("strict", 400), ("lenient", 200)])
async def test_a_summary_follows_the_keys_translation_policy(
    gateway: AppWithRecords, settings: Settings, upstream: FakeOpenAIUpstream,
    translation: str, status: int,
) -> None:
    async with await open_database(settings.database_url) as database:
        _, key = await KeyRepository(database).create(translation, translation=translation)
    response = await gateway.http.post(
        "/v1/responses", json={**REQUEST, "reasoning": {"summary": "concise"}},
        headers={"authorization": f"Bearer {key}"})
    assert response.status_code == status, response.text
    if status == 400:
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", "reasoning.summary")
        assert error["message"] == (f"reasoning.summary is not supported by models/{MODEL}: "
                                    f"models/{MODEL} does not think, so it has no reasoning "
                                    "to summarise")
        assert upstream.requests == []
    else:
        assert response.headers["x-cometgate-dropped"] == "reasoning.summary"


async def test_a_body_over_the_size_limit_is_413(gateway: AppWithRecords,
                                                 upstream: FakeOpenAIUpstream) -> None:
    limit = gateway.settings.server.max_body_bytes
    response = await gateway.http.post("/v1/responses", json={**REQUEST,
                                                              "input": "x" * (limit + 1)})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "exceeds the limit" in error["message"]
    assert upstream.requests == []


async def test_a_missing_key_is_openais_401(gateway: AppWithRecords) -> None:
    response = await gateway.http.post("/v1/responses", json=REQUEST,
                                       headers={"authorization": ""})
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("You didn't provide an API key.")


async def test_the_keys_limits_and_allow_list_hold_in_this_dialect(
    gateway: AppWithRecords, settings: Settings
) -> None:
    if datetime.now(UTC).second > 50:  # per-minute counts reset at the minute's end
        await anyio.sleep(61 - datetime.now(UTC).second)
    async with await open_database(settings.database_url) as database:
        keys = KeyRepository(database)
        _, limited = await keys.create("limited", rpm=1)
        _, elsewhere = await keys.create("elsewhere", allowed_models=("budget-thinker",))
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"authorization": f"Bearer {limited}"}
    assert (await gateway.http.post("/v1/chat/completions", json=chat,
                                    headers=headers)).status_code == 200
    refused = await gateway.http.post("/v1/responses", json=REQUEST, headers=headers)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    forbidden = await gateway.http.post("/v1/responses", json=REQUEST,
                                        headers={"authorization": f"Bearer {elsewhere}"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["type"] == "request_forbidden"
    assert [r.dialect for r in await gateway.records()] == ["openai"]


async def test_an_upstream_429_before_the_stream_started_is_an_http_429(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(status=429, error_type="requests",
                                  error_code="rate_limit_exceeded"))
    response = await gateway.http.post("/v1/responses", json={**REQUEST, "stream": True})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    [record] = await gateway.records()
    assert (record.dialect, record.status) == ("responses", 429)
