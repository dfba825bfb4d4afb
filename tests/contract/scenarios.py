"""The contract table: one scenario per behaviour, each run against every provider kind.

A scenario scripts the upstream in its own wire format, calls the gateway's Gemini API, and
asserts both what the caller got and what the upstream received. Where a kind cannot do what
a scenario asks, that kind's expectation in the scenario is the exact refusal.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from tests.contract.conftest import UPSTREAM_MODEL, Fakes, Gateway
from tests.contract.upstreams import Fault
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import gemini_upstream as gemini
from tests.fakes import openai_upstream as openai

Scenario = Callable[[str, Gateway, Fakes], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}

# Only `data: <one line>` events, each closed by a blank line; nothing before, between or after.
SSE_BODY = re.compile(rb"(?:data: [^\r\n]+\r\n\r\n)+")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
WEATHER = {"functionDeclarations": [{
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}},
                   "required": ["city"]}}]}
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"]}


def scenario(function: Scenario) -> Scenario:
    SCENARIOS[function.__name__] = function
    return function


# --- calling the gateway and reading what the upstream saw -----------------------------------

def url(kind: str, model: str = "text", *, stream: bool = False) -> str:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{kind}-{model}:{method}"


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def received(kind: str, fakes: Fakes, index: int = -1) -> dict[str, Any]:
    """The JSON body of one request the upstream of this kind received."""
    if kind == "gemini":
        return dict(orjson.loads(fakes.gemini.requests[index].body))
    fake: openai.FakeOpenAIUpstream | anthropic.FakeAnthropicUpstream = getattr(fakes, kind)
    return dict(fake.requests[index])


def request_count(kind: str, fakes: Fakes) -> int:
    return len(getattr(fakes, kind).requests)


def assert_forwarded(fakes: Fakes, sent: bytes, method: str = "generateContent") -> None:
    """The Gemini pass-through: the caller's bytes, under the upstream model and our key."""
    seen = fakes.gemini.requests[-1]
    assert seen.body == sent
    assert seen.path == f"/v1beta/models/{UPSTREAM_MODEL['gemini']}:{method}"
    assert seen.headers["x-goog-api-key"] == "gm-key-1"


def parts_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json()["candidates"][0]["content"]["parts"])


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert SSE_BODY.fullmatch(response.content), response.content[:400]
    return [orjson.loads(e.removeprefix(b"data: ")) for e in response.content.split(b"\r\n\r\n")
            if e]


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(part.get("text", "") for event in events
                   for candidate in event.get("candidates", [])
                   for part in candidate["content"].get("parts", []))


def error_of(response: httpx.Response, code: int, status: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (code, status), error
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


# --- scripting each kind of upstream in its own wire format ----------------------------------

def script_text(kind: str, fakes: Fakes, text: str, *, chunks: int = 3) -> None:
    replies: dict[str, Any] = {
        "openai": lambda: openai.Reply(text=text, chunks=chunks),
        "anthropic": lambda: anthropic.Reply(text=text, chunks=chunks),
        "gemini": lambda: gemini.Reply(text=text, chunks=chunks),
    }
    getattr(fakes, kind).replies.append(replies[kind]())


def script_calls(kind: str, fakes: Fakes, calls: list[tuple[str, dict[str, Any]]]) -> None:
    if kind == "openai":
        fakes.openai.replies.append(openai.Reply(
            text=None, finish_reason="tool_calls",
            tool_calls=[{"name": n, "arguments": a} for n, a in calls]))
    elif kind == "anthropic":
        fakes.anthropic.replies.append(anthropic.Reply(
            text=None, stop_reason="tool_use",
            tool_calls=[{"name": n, "input": a} for n, a in calls]))
    else:
        parts = [{"functionCall": {"name": n, "args": a}} for n, a in calls]
        document = {"candidates": [{"content": {"role": "model", "parts": parts},
                                    "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4,
                                      "totalTokenCount": 13},
                    "modelVersion": "gemini-up"}
        fakes.gemini.replies.append(gemini.Reply(raw_body=orjson.dumps(document)))


ERROR_TYPES = {
    "openai": {400: "invalid_request_error", 401: "invalid_request_error",
               429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"},
    "anthropic": {400: "invalid_request_error", 401: "authentication_error",
                  429: "rate_limit_error", 500: "api_error", 503: "overloaded_error"},
}
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 503: "UNAVAILABLE"}


def script_error(kind: str, fakes: Fakes, status: int, *, times: int = 1,
                 headers: dict[str, str] | None = None) -> None:
    for _ in range(times):
        if kind == "openai":
            code = "invalid_api_key" if status == 401 else None
            fakes.openai.replies.append(openai.Reply(
                status=status, error_type=ERROR_TYPES[kind][status], error_code=code,
                headers=dict(headers or {})))
        elif kind == "anthropic":
            fakes.anthropic.replies.append(anthropic.Reply(
                status=status, error_type=ERROR_TYPES[kind][status],
                headers=dict(headers or {})))
        else:
            details = [gemini.retry_info("7s")] if status == 429 else None
            fakes.gemini.replies.append(gemini.Reply(
                status=status, headers=dict(headers or {}),
                error=gemini.google_error(status, GOOGLE_STATUS[status], f"fake {status}",
                                          details)))


# --- the scenarios ---------------------------------------------------------------------------

@scenario
async def text(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_text(kind, fakes, "Plain answer.")
    body = {"contents": [user("Say something")]}
    response = await gw.http.post(url(kind), json=body)
    assert parts_of(response) == [{"text": "Plain answer."}]
    document = response.json()
    assert document["candidates"][0]["finishReason"] == "STOP"
    usage = document["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    sent = received(kind, fakes)
    if kind == "openai":
        assert sent == {"model": "gpt-up", "messages": [{"role": "user",
                                                         "content": "Say something"}]}
    elif kind == "anthropic":
        assert sent == {"model": "claude-up", "max_tokens": 4096, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say something"}]}]}
        assert fakes.anthropic.headers[-1]["x-api-key"] == "sk-ant-1"
    else:
        assert_forwarded(fakes, response.request.content)


@scenario
async def multi_turn_with_system_instruction(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_text(kind, fakes, "Paris, again.")
    body = {"systemInstruction": {"parts": [{"text": "Answer in two words."}]},
            "contents": [user("Capital of France?"),
                         {"role": "model", "parts": [{"text": "Paris, France."}]},
                         user("Say it again.")]}
    response = await gw.http.post(url(kind), json=body)
    assert parts_of(response) == [{"text": "Paris, again."}]
    sent = received(kind, fakes)
    if kind == "openai":
        assert sent["messages"] == [
            {"role": "system", "content": "Answer in two words."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris, France."},
            {"role": "user", "content": "Say it again."}]
    elif kind == "anthropic":
        assert sent["system"] == [{"type": "text", "text": "Answer in two words."}]
        assert sent["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Paris, France."}]},
            {"role": "user", "content": [{"type": "text", "text": "Say it again."}]}]
    else:
        assert_forwarded(fakes, response.request.content)


@scenario
async def image_inline_data(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_text(kind, fakes, "A tiny PNG.")
    encoded = base64.b64encode(PNG).decode()
    body = {"contents": [{"role": "user", "parts": [
        {"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": encoded}}]}]}
    response = await gw.http.post(url(kind), json=body)
    assert parts_of(response) == [{"text": "A tiny PNG."}]
    sent = received(kind, fakes)
    if kind == "openai":
        assert sent["messages"] == [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}]}]
    elif kind == "anthropic":
        assert sent["messages"] == [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": encoded}}]}]
    else:
        assert_forwarded(fakes, response.request.content)


@scenario
async def image_on_a_text_only_model_is_refused(kind: str, gw: Gateway, fakes: Fakes) -> None:
    body = {"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}]}]}
    before = request_count(kind, fakes)
    response = await gw.http.post(url(kind, "slow"), json=body)
    if kind == "gemini":  # pass-through: the upstream is the judge, and it answered
        assert response.status_code == 200
        assert request_count(kind, fakes) == before + 1
        return
    error = error_of(response, 400, "INVALID_ARGUMENT")
    assert "image/png" in error["message"]
    assert request_count(kind, fakes) == before


def call_parts(response: httpx.Response) -> list[dict[str, Any]]:
    return [p["functionCall"] for p in parts_of(response) if "functionCall" in p]


def assert_tools_sent(kind: str, sent: dict[str, Any]) -> None:
    if kind == "openai":
        assert sent["tools"] == [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather in a city",
            "parameters": WEATHER_SCHEMA}}]
    elif kind == "anthropic":
        assert sent["tools"] == [{"name": "get_weather",
                                  "description": "Current weather in a city",
                                  "input_schema": WEATHER_SCHEMA}]


@scenario
async def tools_one_call(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_calls(kind, fakes, [("get_weather", {"city": "Lima"})])
    body = {"contents": [user("Weather in Lima?")], "tools": [WEATHER]}
    response = await gw.http.post(url(kind), json=body)
    calls = call_parts(response)
    assert [(c["name"], c["args"]) for c in calls] == [("get_weather", {"city": "Lima"})]
    if kind == "openai":
        assert calls[0]["id"] == "call_0"
    elif kind == "anthropic":
        assert calls[0]["id"].startswith("toolu_fake")
    if kind == "gemini":
        assert_forwarded(fakes, response.request.content)
    else:
        assert_tools_sent(kind, received(kind, fakes))


@scenario
async def parallel_tool_calls(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_calls(kind, fakes, [("get_weather", {"city": "Lima"}),
                               ("get_weather", {"city": "Oslo"})])
    first = [user("Weather in Lima and Oslo?")]
    response = await gw.http.post(url(kind), json={"contents": first, "tools": [WEATHER]})
    calls = call_parts(response)
    assert [c["args"]["city"] for c in calls] == ["Lima", "Oslo"]
    if kind != "gemini":  # Gemini may leave ids out; the pass-through does not invent them
        assert len({c["id"] for c in calls}) == 2
    model_turn = response.json()["candidates"][0]["content"]
    answers = [{"functionResponse": {**({"id": c["id"]} if "id" in c else {}),
                                     "name": c["name"],
                                     "response": {"temp": 20 + i}}}
               for i, c in enumerate(calls)]
    script_text(kind, fakes, "Lima 20, Oslo 21.")
    body = {"contents": [*first, model_turn, {"role": "user", "parts": answers}],
            "tools": [WEATHER]}
    response = await gw.http.post(url(kind), json=body)
    assert parts_of(response) == [{"text": "Lima 20, Oslo 21."}]
    sent = received(kind, fakes)
    if kind == "openai":
        assistant, *results = sent["messages"][1:]
        ids = [call["id"] for call in assistant["tool_calls"]]
        assert ids == [c["id"] for c in calls]
        assert results == [{"role": "tool", "tool_call_id": ids[i],
                            "content": orjson.dumps({"temp": 20 + i}).decode()}
                           for i in range(2)]
    elif kind == "anthropic":  # the fake refuses results that do not answer the calls
        assistant, results = sent["messages"][1:]
        ids = [b["id"] for b in assistant["content"] if b["type"] == "tool_use"]
        assert ids == [c["id"] for c in calls]
        assert [b["tool_use_id"] for b in results["content"]] == ids
    else:
        assert_forwarded(fakes, response.request.content)


@scenario
async def function_calling_loop_without_ids(kind: str, gw: Gateway, fakes: Fakes) -> None:
    """google-genai's automatic function calling sends calls and responses without ids."""
    script_text(kind, fakes, "It is 20 degrees in Lima.")
    body = {"contents": [
        user("Weather in Lima?"),
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather",
                                                      "args": {"city": "Lima"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                         "response": {"temp": 20}}}]}],
        "tools": [WEATHER]}
    response = await gw.http.post(url(kind), json=body)
    assert parts_of(response) == [{"text": "It is 20 degrees in Lima."}]
    sent = received(kind, fakes)
    if kind == "openai":
        assistant, result = sent["messages"][1:]
        (call,) = assistant["tool_calls"]
        assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Lima"}'}
        assert result == {"role": "tool", "tool_call_id": call["id"], "content": '{"temp":20}'}
    elif kind == "anthropic":
        assistant, result = sent["messages"][1:]
        (use,) = assistant["content"]
        assert (use["type"], use["name"], use["input"]) == ("tool_use", "get_weather",
                                                            {"city": "Lima"})
        (block,) = result["content"]
        assert block["type"] == "tool_result" and block["tool_use_id"] == use["id"]
    else:
        assert_forwarded(fakes, response.request.content)


@scenario
async def json_schema_output(kind: str, gw: Gateway, fakes: Fakes) -> None:
    answer = {"city": "Lima"}
    if kind == "anthropic":  # constrained output rides on one forced tool call
        fakes.anthropic.replies.append(anthropic.Reply(
            text=None, stop_reason="tool_use", tool_calls=[{"name": "respond",
                                                            "input": answer}]))
    else:
        script_text(kind, fakes, orjson.dumps(answer).decode())
    body = {"contents": [user("A city as JSON")],
            "generationConfig": {"responseMimeType": "application/json",
                                 "responseJsonSchema": WEATHER_SCHEMA}}
    response = await gw.http.post(url(kind), json=body)
    (part,) = parts_of(response)
    assert orjson.loads(part["text"]) == answer
    sent = received(kind, fakes)
    if kind == "openai":
        assert sent["response_format"]["type"] == "json_schema"
        assert sent["response_format"]["json_schema"]["schema"]["properties"] == {
            "city": {"type": "string"}}
    elif kind == "anthropic":
        (tool,) = sent["tools"]
        assert tool["name"] == "respond" and tool["input_schema"]["properties"] == {
            "city": {"type": "string"}}
        assert sent["tool_choice"] == {"type": "tool", "name": "respond"}
    else:
        assert_forwarded(fakes, response.request.content)


@scenario
async def stream(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_text(kind, fakes, "One two three four five.", chunks=4)
    body = {"contents": [user("Count to five")]}
    response = await gw.http.post(url(kind, stream=True), json=body)
    events = sse_events(response)
    assert len(events) >= 3
    assert streamed_text(events) == "One two three four five."
    last = events[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["candidatesTokenCount"] > 0
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])
    sent = received(kind, fakes)
    if kind == "openai":
        assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    elif kind == "anthropic":
        assert sent["stream"] is True
    else:
        assert_forwarded(fakes, response.request.content, "streamGenerateContent")
        assert fakes.gemini.requests[-1].query == "alt=sse"
        # The bytes as received, but for the model's name: the caller's, not the upstream's.
        received_bytes = b"".join(fakes.gemini.sent[-1])
        assert b'"modelVersion":"gemini-2.5-flash"' in received_bytes
        assert response.content == received_bytes.replace(
            b'"modelVersion":"gemini-2.5-flash"', b'"modelVersion":"gemini-text"')


@scenario
async def upstream_400(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_error(kind, fakes, 400)
    response = await gw.http.post(url(kind), json={"contents": [user("Hi")]})
    error_of(response, 400, "INVALID_ARGUMENT")
    assert request_count(kind, fakes) == 1  # the caller's fault: never retried
    if kind == "gemini":  # the upstream's own error, verbatim
        assert response.json() == gemini.google_error(400, "INVALID_ARGUMENT", "fake 400")


@scenario
async def upstream_401_cools_the_credential(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_error(kind, fakes, 401)
    response = await gw.http.post(url(kind), json={"contents": [user("Hi")]})
    error_of(response, 503, "UNAVAILABLE")
    assert request_count(kind, fakes) == 1
    again = await gw.http.post(url(kind), json={"contents": [user("Hi")]})
    error_of(again, 503, "UNAVAILABLE")
    assert int(again.headers["retry-after"]) >= 1
    assert request_count(kind, fakes) == 1  # the cooling credential is not used again


@scenario
async def upstream_429_with_retry_after(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_error(kind, fakes, 429, headers={"retry-after": "7"})
    response = await gw.http.post(url(kind), json={"contents": [user("Hi")]})
    error = error_of(response, 429, "RESOURCE_EXHAUSTED")
    assert response.headers["retry-after"] == "7"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in error[
        "details"]
    assert request_count(kind, fakes) == 1


async def _transient(kind: str, gw: Gateway, fakes: Fakes, status: int) -> None:
    script_error(kind, fakes, status, times=3)  # routing.retries is 2: three tries in all
    script_text(kind, fakes, "never reached")
    response = await gw.http.post(url(kind), json={"contents": [user("Hi")]})
    error_of(response, 503, "UNAVAILABLE")
    assert int(response.headers["retry-after"]) >= 1
    assert request_count(kind, fakes) == 3


@scenario
async def upstream_500_retried_then_503(kind: str, gw: Gateway, fakes: Fakes) -> None:
    await _transient(kind, gw, fakes, 500)


@scenario
async def upstream_503_retried_then_503(kind: str, gw: Gateway, fakes: Fakes) -> None:
    await _transient(kind, gw, fakes, 503)


@scenario
async def upstream_500_then_success(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_error(kind, fakes, 500)
    script_text(kind, fakes, "Second time lucky.")
    response = await gw.http.post(url(kind), json={"contents": [user("Hi")]})
    assert parts_of(response) == [{"text": "Second time lucky."}]
    assert request_count(kind, fakes) == 2


@scenario
async def first_byte_timeout(kind: str, gw: Gateway, fakes: Fakes) -> None:
    layer = fakes.layers[kind]
    layer.faults.extend(Fault(hold_seconds=0.6) for _ in range(3))
    response = await gw.http.post(url(kind, "slow"), json={"contents": [user("Hi")]})
    error = error_of(response, 504, "DEADLINE_EXCEEDED")
    assert "0.3s" in error["message"]
    assert layer.held == 3  # retried as a transient failure, then given up


@scenario
async def reset_before_first_byte(kind: str, gw: Gateway, fakes: Fakes) -> None:
    response = await gw.http.post(url(kind, "reset"), json={"contents": [user("Hi")]})
    error_of(response, 503, "UNAVAILABLE")
    script_text(kind, fakes, "From the second candidate.")
    response = await gw.http.post(url(kind, "reset-failover"), json={"contents": [user("Hi")]})
    assert parts_of(response) == [{"text": "From the second candidate."}]
    assert request_count(kind, fakes) == 1


# Body chunks each fake writes before its first text: the break comes right after that text.
CHUNKS_TO_FIRST_TEXT = {"openai": 2, "anthropic": 4, "gemini": 1}


@scenario
async def reset_after_first_byte(kind: str, gw: Gateway, fakes: Fakes) -> None:
    fakes.layers[kind].faults.append(Fault(reset_after_chunks=CHUNKS_TO_FIRST_TEXT[kind]))
    script_text(kind, fakes, "abcdefghi", chunks=3)
    response = await gw.http.post(url(kind, stream=True), json={"contents": [user("Hi")]})
    events = sse_events(response)
    *good, last = events
    assert streamed_text(good) == "abc"
    assert list(last) == ["error"]
    assert list(last["error"])[:2] == ["code", "message"]
    assert last["error"]["code"] == 503 and last["error"]["status"] == "UNAVAILABLE"
    assert request_count(kind, fakes) == 1  # no failover once bytes reached the caller


THINKING = {"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}}


@scenario
async def thinking_signatures_round_trip(kind: str, gw: Gateway, fakes: Fakes) -> None:
    """Budget thinking on, thoughts included; the model turn goes back as it came."""
    script_thinking(kind, fakes)
    first = [user("What is six times seven?")]
    response = await gw.http.post(url(kind, "think"),
                                  json={"contents": first, "generationConfig": THINKING})
    parts = parts_of(response)
    sent = received(kind, fakes)
    if kind == "openai":  # reasoning is asked for; Chat Completions returns none to show
        assert parts == [{"text": "42"}]
        assert sent["reasoning_effort"] == "medium"
        parts = [{"text": "42", "thoughtSignature": "c2ln"}]  # as a Gemini model signs it
    elif kind == "anthropic":
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        thought, answer = parts
        assert (thought["text"], thought["thought"], answer) == (
            "Six times seven.", True, {"text": "42"})
        assert thought["thoughtSignature"]  # opaque: it packs Anthropic's signed block
    else:
        assert parts == SIGNED_PARTS
    script_text(kind, fakes, "Yes.")
    body = {"contents": [*first, {"role": "model", "parts": parts}, user("Sure?")],
            "generationConfig": THINKING}
    again = await gw.http.post(url(kind, "think"), json=body)
    assert parts_of(again) == [{"text": "Yes."}]
    sent = received(kind, fakes)
    if kind == "openai":  # the signature cannot travel; the caller is told it was dropped
        assert sent["messages"][1] == {"role": "assistant", "content": "42"}
        assert again.headers["x-cometgate-dropped"] == "contents[1].parts[0].thoughtSignature"
    elif kind == "anthropic":  # the fake refuses a thinking block it did not sign
        assert sent["messages"][1]["content"] == [
            {"type": "thinking", "thinking": "Six times seven.",
             "signature": anthropic.signature_for("Six times seven.")},
            {"type": "text", "text": "42"}]
    else:
        assert_forwarded(fakes, again.request.content)


SIGNED_PARTS = [{"text": "Six times seven.", "thought": True},
                {"text": "42", "thoughtSignature": "c2ln"}]


def script_thinking(kind: str, fakes: Fakes) -> None:
    if kind == "anthropic":
        fakes.anthropic.replies.append(anthropic.Reply(thinking="Six times seven.", text="42"))
    elif kind == "openai":
        script_text(kind, fakes, "42")
    else:
        document = {"candidates": [{"content": {"role": "model", "parts": SIGNED_PARTS},
                                    "finishReason": "STOP", "index": 0}],
                    "modelVersion": "gemini-up"}
        fakes.gemini.replies.append(gemini.Reply(raw_body=orjson.dumps(document)))


CALL_AFTER_THOUGHT = [{"text": "Check Lima.", "thought": True},
                      {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}},
                       "thoughtSignature": "c2ln"}]


def script_thought_then_call(kind: str, fakes: Fakes) -> None:
    if kind == "anthropic":
        fakes.anthropic.replies.append(anthropic.Reply(
            thinking="Check Lima.", redacted="opaque-data", text="Let me look.",
            stop_reason="tool_use",
            tool_calls=[{"name": "get_weather", "input": {"city": "Lima"}}]))
    elif kind == "openai":
        script_calls(kind, fakes, [("get_weather", {"city": "Lima"})])
    else:
        document = {"candidates": [{"content": {"role": "model", "parts": CALL_AFTER_THOUGHT},
                                    "finishReason": "STOP", "index": 0}],
                    "modelVersion": "gemini-up"}
        fakes.gemini.replies.append(gemini.Reply(raw_body=orjson.dumps(document)))


def without_thoughts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model turn as Gemini CLI sends it back: thought parts left out, text pieces joined,
    signatures kept only on function calls."""
    text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
    calls = [p for p in parts if "functionCall" in p]
    return ([{"text": text}] if text else []) + calls


async def _answer_the_call(kind: str, gw: Gateway, fakes: Fakes, config: dict[str, Any],
                           model_parts: list[dict[str, Any]]) -> dict[str, Any]:
    call = next(p["functionCall"] for p in model_parts if "functionCall" in p)
    result = {"functionResponse": {**({"id": call["id"]} if "id" in call else {}),
                                   "name": "get_weather", "response": {"temp": 20}}}
    script_text(kind, fakes, "20 degrees.")
    body = {"contents": [user("Weather in Lima?"), {"role": "model", "parts": model_parts},
                         {"role": "user", "parts": [result]}],
            "tools": [WEATHER], "generationConfig": config}
    response = await gw.http.post(url(kind, "think"), json=body)
    assert parts_of(response) == [{"text": "20 degrees."}]
    if kind == "gemini":
        assert_forwarded(fakes, response.request.content)
    return received(kind, fakes)


HIDDEN_THINKING = {"thinkingConfig": {"thinkingBudget": 2048}}


@scenario
async def thinking_then_a_call_answered_without_the_thought(
    kind: str, gw: Gateway, fakes: Fakes
) -> None:
    """Gemini CLI drops thought parts from the history and keeps signatures on calls only, so
    the call's signature alone must bring Anthropic's thinking back, shown or hidden (hidden
    thinking rides on the text before the call); a client that sends every part back must not
    send the thinking twice."""
    for config in (THINKING, HIDDEN_THINKING):
        body = {"contents": [user("Weather in Lima?")], "tools": [WEATHER],
                "generationConfig": config}
        script_thought_then_call(kind, fakes)
        whole = parts_of(await gw.http.post(url(kind, "think"), json=body))
        parts = whole
        if kind == "gemini":  # pass-through: Gemini's own signatures, as Gemini sent them
            assert whole == CALL_AFTER_THOUGHT
        else:  # the fake Gemini streams only scripted text; the others stream calls too
            script_thought_then_call(kind, fakes)
            streamed = await gw.http.post(url(kind, "think", stream=True), json=body)
            parts = [part for event in sse_events(streamed)
                     for c in event.get("candidates", [])
                     for part in c["content"].get("parts", [])]
        if kind == "openai":
            assert all("thoughtSignature" not in part for part in parts + whole)
        for model_parts in (without_thoughts(parts), without_thoughts(whole), whole):
            sent = await _answer_the_call(kind, gw, fakes, config, model_parts)
            if kind == "anthropic":  # the fake refuses thinking it did not sign, or none
                blocks = sent["messages"][1]["content"]
                assert [b["type"] for b in blocks] == [
                    "thinking", "redacted_thinking", "text", "tool_use"]
                assert blocks[0] == {"type": "thinking", "thinking": "Check Lima.",
                                     "signature": anthropic.signature_for("Check Lima.")}
                assert blocks[1]["data"] == "opaque-data"


@scenario
async def thinking_on_a_model_without_thinking_is_refused(
    kind: str, gw: Gateway, fakes: Fakes
) -> None:
    body = {"contents": [user("Hi")], "generationConfig": THINKING}
    response = await gw.http.post(url(kind), json=body)
    if kind == "gemini":  # pass-through: the upstream decides
        assert response.status_code == 200
        assert request_count(kind, fakes) == 1
        return
    error = error_of(response, 400, "INVALID_ARGUMENT")
    assert error["message"] == f"Thinking is not enabled for models/{kind}-text"
    assert request_count(kind, fakes) == 0


# --- failures the upstream reports in-band, after its stream began ---------------------------

def script_in_band_error(kind: str, fakes: Fakes) -> None:
    """A stream that sends its first content, then the upstream's own error event: Gemini's
    `data: {"error":{"code":500,…,"status":"INTERNAL"}}`, OpenAI's `data: {"error":{…}}`,
    Anthropic's `event: error` (overloaded_error)."""
    if kind == "gemini":
        fakes.gemini.replies.append(gemini.Reply(text="abcdef", chunks=3, fail_mid_stream=(
            gemini.google_error(500, "INTERNAL", "An internal error has occurred."))))
    elif kind == "openai":
        fakes.openai.replies.append(openai.Reply(text="abcdef", chunks=3,
                                                 fail_mid_stream=True))
    else:
        fakes.anthropic.replies.append(anthropic.Reply(text="abcdef", chunks=3,
                                                       fail_mid_stream=True))


@scenario
async def in_band_error_mid_stream(kind: str, gw: Gateway, fakes: Fakes) -> None:
    """The caller gets the content, then an error event; the record says the request failed
    (for Gemini this is the pass-through, which relays the upstream's own event)."""
    script_in_band_error(kind, fakes)
    response = await gw.http.post(url(kind, stream=True), json={"contents": [user("Hi")]})
    *good, last = sse_events(response)
    assert streamed_text(good) == "ab"
    assert list(last) == ["error"] and last["error"]["code"] in (500, 503)
    if kind == "gemini":  # relayed as the upstream sent it
        assert last == gemini.google_error(500, "INTERNAL", "An internal error has occurred.")
    assert await gw.status_and_class(response) == (503, "transient")
    assert request_count(kind, fakes) == 1


@scenario
async def in_band_error_mid_stream_openai_caller(kind: str, gw: Gateway, fakes: Fakes) -> None:
    """The same through the OpenAI entrance (for the OpenAI kind, its pass-through)."""
    script_in_band_error(kind, fakes)
    response = await gw.http.post("/v1/chat/completions", json={
        "model": f"{kind}-text", "stream": True,
        "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 200
    frames = [orjson.loads(line.removeprefix(b"data: "))
              for line in response.content.split(b"\n\n") if line.startswith(b"data: {")]
    last = frames[-1]
    assert list(last) == ["error"], last
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in frames[:-1]
                   if c["choices"])
    assert text == "ab"
    if kind == "openai":  # relayed as the upstream sent it
        assert last["error"]["message"] == "fake upstream broke"
    assert await gw.status_and_class(response) == (503, "transient")
    assert request_count(kind, fakes) == 1


# --- a 200 that is no answer -----------------------------------------------------------------

# Each kind's answer that is no answer, as the three tries of one target get them (the first
# try and routing.retries = 2): not JSON, then JSON of the wrong shape, twice.
MALFORMED = {
    "openai": [b"<html>oops</html>", b'{"id":"chatcmpl-1","object":"chat.completion"}', b"[]"],
    "anthropic": [b"<html>oops</html>", b'{"id":"msg_1","type":"message"}', b"[]"],
    "gemini": [b"<html>oops</html>", b'{"modelVersion":"gemini-up"}', b"[]"],
}
# A stream whose first event is no event of the dialect.
MALFORMED_STREAM = {
    "openai": b"data: {not json\n\n",
    "anthropic": b"event: message_start\ndata: nope\n\n",
    "gemini": b"data: <html>oops</html>\r\n\r\n",
}


def script_malformed(kind: str, fakes: Fakes, *, stream: bool) -> None:
    bodies = [MALFORMED_STREAM[kind]] * 3 if stream else MALFORMED[kind]
    for body in bodies:
        if kind == "openai":
            fakes.openai.replies.append(openai.Reply(raw_body=body))
        elif kind == "anthropic":
            fakes.anthropic.replies.append(anthropic.Reply(raw_body=body))
        else:
            fakes.gemini.replies.append(gemini.Reply(raw_body=body))


@scenario
async def malformed_answer_fails_over(kind: str, gw: Gateway, fakes: Fakes) -> None:
    """A 200 that is no answer is the upstream's transient fault: retried, then the next
    candidate answers (on the same fake here, through its second provider)."""
    script_malformed(kind, fakes, stream=False)
    script_text(kind, fakes, "From the second candidate.")
    response = await gw.http.post(url(kind, "fallback"), json={"contents": [user("Hi")]})
    assert parts_of(response) == [{"text": "From the second candidate."}]
    assert request_count(kind, fakes) == 4
    record = await gw.record(response)
    assert (record.status, record.failure_class, record.provider) == (200, None, f"{kind}-second")


@scenario
async def malformed_answer_everywhere_is_a_502(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_malformed(kind, fakes, stream=False)
    response = await gw.http.post(url(kind), json={"contents": [user("Hi")]})
    error = error_of(response, 502, "UNAVAILABLE")
    assert error["message"].startswith("unreadable upstream response")
    assert request_count(kind, fakes) == 3


@scenario
async def malformed_first_event_fails_over(kind: str, gw: Gateway, fakes: Fakes) -> None:
    script_malformed(kind, fakes, stream=True)
    script_text(kind, fakes, "From the second candidate.")
    response = await gw.http.post(url(kind, "fallback", stream=True),
                                  json={"contents": [user("Hi")]})
    assert streamed_text(sse_events(response)) == "From the second candidate."
    assert request_count(kind, fakes) == 4
    record = await gw.record(response)
    assert (record.status, record.failure_class, record.provider) == (200, None, f"{kind}-second")


@scenario
async def malformed_first_event_everywhere_is_a_502(
    kind: str, gw: Gateway, fakes: Fakes
) -> None:
    script_malformed(kind, fakes, stream=True)
    response = await gw.http.post(url(kind, stream=True), json={"contents": [user("Hi")]})
    error_of(response, 502, "UNAVAILABLE")
    assert request_count(kind, fakes) == 3
