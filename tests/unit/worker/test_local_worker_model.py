"""The worker process with the real bundled model, over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

pytest.importorskip("llama_cpp")

from cometgate.bundled_model import BundledModelMissing, bundled_gguf_path

pytestmark = pytest.mark.model

MODEL = "smollm2-135m-instruct"
TOKEN = "worker-test-token-0123456789"  # what a supervisor would write on the worker's stdin
AUTH = {"authorization": f"Bearer {TOKEN}"}
CONTEXT = 2048
QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a timezone",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string", "maxLength": 20}},
                   "required": ["tz"]}}}
# Forces a long output: the grammar demands at least 1500 numbers.
LONG_OUTPUT = {"type": "json_schema", "json_schema": {"name": "long", "schema": {
    "type": "array", "items": {"type": "integer"}, "minItems": 1500}}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def worker() -> Iterator[str]:
    try:
        path = bundled_gguf_path()
    except BundledModelMissing:
        pytest.skip("bundled GGUF not installed")
    port = _free_port()
    process = subprocess.Popen([
        sys.executable, "-m", "cometgate.worker", "--model-path", str(path),
        "--model-name", MODEL, "--host", "127.0.0.1", "--port", str(port), "--threads", "2",
        "--context-size", str(CONTEXT)], stdin=subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.write(TOKEN.encode() + b"\n")
    process.stdin.close()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
    assert exit_code == 0  # SIGTERM is a graceful exit


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "worker exited during start-up"
        try:
            if httpx.get(f"{base}/health", timeout=2, headers=AUTH).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("worker never became healthy")


def chat(base: str, **fields: Any) -> httpx.Response:
    body = {"model": MODEL, "messages": QUESTION, **fields}
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120, headers=AUTH)


def sse_payloads(raw: bytes) -> list[Any]:
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")[:-1]
    assert all(event.startswith(b"data: ") and b"\n" not in event for event in events)
    return [orjson.loads(event[6:]) for event in events[:-1]]


def test_without_the_token_nothing_is_answered(worker: str) -> None:
    assert httpx.get(f"{worker}/health").status_code == 401
    refused = httpx.post(f"{worker}/v1/chat/completions", json={"model": MODEL,
                                                               "messages": QUESTION})
    assert refused.status_code == 401
    wrong = httpx.get(f"{worker}/v1/models", headers={"authorization": "Bearer guessed"})
    assert wrong.status_code == 401


def test_health_and_models(worker: str) -> None:
    assert httpx.get(f"{worker}/health", headers=AUTH).json() == {"status": "ok"}
    models = httpx.get(f"{worker}/v1/models", headers=AUTH).json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == MODEL
    assert models["data"][0]["context_length"] == CONTEXT


def test_plain_chat(worker: str) -> None:
    response = chat(worker, max_tokens=24, temperature=0)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length") and choice["logprobs"] is None
    usage = body["usage"]
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_framing(worker: str) -> None:
    raw = chat(worker, max_tokens=8, temperature=0, stream=True,
               stream_options={"include_usage": True}).content
    payloads = sse_payloads(raw)
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    finish = payloads[-2]["choices"][0]
    assert finish["finish_reason"] in ("stop", "length") and finish["delta"] == {}
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["completion_tokens"] <= 8
    streamed = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads[:-1])
    assert streamed == chat(worker, max_tokens=8, temperature=0).json()["choices"][0][
        "message"]["content"]


def test_max_tokens_gives_length(worker: str) -> None:
    body = chat(worker, max_tokens=3, temperature=0).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_stop_sequence_cuts_output(worker: str) -> None:
    full = chat(worker, max_tokens=20, temperature=0).json()["choices"][0]["message"]["content"]
    stop = full[8:11]
    assert len(stop) == 3
    cut = chat(worker, max_tokens=20, temperature=0, stop=[stop]).json()["choices"][0]
    assert cut["finish_reason"] == "stop"
    assert cut["message"]["content"] == full[: full.index(stop)]


def test_same_seed_same_text(worker: str) -> None:
    first = chat(worker, max_tokens=16, temperature=1.0, seed=1234).json()
    second = chat(worker, max_tokens=16, temperature=1.0, seed=1234).json()
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]


def test_logprobs(worker: str) -> None:
    body = chat(worker, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert len(content) == body["usage"]["completion_tokens"]
    for entry in content:
        assert entry["logprob"] <= 0 and len(entry["top_logprobs"]) == 3
        # Greedy decoding picks the most likely token.
        assert entry["logprob"] == pytest.approx(entry["top_logprobs"][0]["logprob"])
    assert "".join(e["token"] for e in content) == body["choices"][0]["message"]["content"]


def test_streamed_logprobs_match_the_whole_answer(worker: str) -> None:
    fields: dict[str, Any] = {"max_tokens": 6, "temperature": 0, "logprobs": True,
                              "top_logprobs": 2}
    whole = chat(worker, **fields).json()["choices"][0]["logprobs"]["content"]
    payloads = sse_payloads(chat(worker, stream=True, **fields).content)
    streamed = [entry for p in payloads for choice in p["choices"] if choice["logprobs"]
                for entry in choice["logprobs"]["content"]]
    # Every token reaches the stream exactly once, in the chunk that shows its text.
    assert [e["token"] for e in streamed] == [e["token"] for e in whole]
    assert [e["logprob"] for e in streamed] == pytest.approx([e["logprob"] for e in whole])
    text = "".join(choice["delta"].get("content", "") for p in payloads
                   for choice in p["choices"])
    assert "".join(e["token"] for e in streamed) == text


SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                      "age": {"type": "integer", "minimum": 0}},
     "required": ["name", "age"]},
    {"type": "string", "enum": ["red", "orange", "yellow"]},
    {"type": "array", "items": {"type": "object", "properties": {
        "colour": {"enum": ["red", "blue"]}, "ok": {"type": "boolean"}},
        "required": ["colour", "ok"]}, "minItems": 1, "maxItems": 2},
    {"type": "object", "properties": {"note": {"anyOf": [{"type": "null"}, {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}]}},
     "required": ["note"]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_json_schema_output_validates(worker: str, schema: dict[str, Any]) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    body = chat(worker, max_tokens=120, temperature=0.7, seed=7,
                response_format=response_format).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    jsonschema.validate(orjson.loads(choice["message"]["content"]), schema)


def test_json_object_output_parses(worker: str) -> None:
    body = chat(worker, max_tokens=120, temperature=0, response_format={"type": "json_object"},
                messages=[{"role": "user", "content": "Give a JSON object with a colour."}])
    choice = body.json()["choices"][0]
    if choice["finish_reason"] == "stop":
        assert isinstance(orjson.loads(choice["message"]["content"]), dict)
    else:
        assert choice["message"]["content"].startswith("{")


def _assert_valid_calls(message: dict[str, Any]) -> None:
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER_TOOL, TIME_TOOL)}
    assert message["content"] is None and message["tool_calls"]
    for call in message["tool_calls"]:
        assert call["id"].startswith("call_") and call["type"] == "function"
        jsonschema.validate(orjson.loads(call["function"]["arguments"]),
                            tools[call["function"]["name"]])


@pytest.mark.parametrize("tool_choice", [
    "required", {"type": "function", "function": {"name": "get_time"}}])
def test_forced_tool_calls_validate(worker: str, tool_choice: object) -> None:
    body = chat(worker, max_tokens=150, temperature=0, tools=[WEATHER_TOOL, TIME_TOOL],
                tool_choice=tool_choice,
                messages=[{"role": "user", "content": "What's the weather in Paris?"}]).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    _assert_valid_calls(choice["message"])
    if isinstance(tool_choice, dict):
        assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["get_time"]


def test_auto_tool_choice_gives_valid_call_or_text(worker: str) -> None:
    body = chat(worker, max_tokens=60, temperature=0, tools=[WEATHER_TOOL],
                messages=[{"role": "user", "content": "What's the weather in Paris?"}]).json()
    choice = body["choices"][0]
    if choice["finish_reason"] == "tool_calls":
        _assert_valid_calls(choice["message"])
    else:
        assert not choice["message"]["content"].lstrip().startswith("<tool_call>")


def test_streamed_tool_call(worker: str) -> None:
    raw = chat(worker, max_tokens=60, temperature=0, tools=[WEATHER_TOOL], stream=True,
               tool_choice="required").content
    payloads = sse_payloads(raw)
    deltas = [p["choices"][0]["delta"] for p in payloads]
    calls = [call for delta in deltas for call in delta.get("tool_calls", [])]
    assert calls and calls[0]["index"] == 0 and calls[0]["function"]["name"] == "get_weather"
    assert payloads[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert not any(delta.get("content") for delta in deltas)


def test_a_streamed_tool_call_carries_the_logprobs_of_its_tokens(worker: str) -> None:
    raw = chat(worker, max_tokens=60, temperature=0, tools=[WEATHER_TOOL], stream=True,
               tool_choice="required", logprobs=True,
               stream_options={"include_usage": True}).content
    payloads = sse_payloads(raw)
    with_calls = [choice for p in payloads for choice in p["choices"]
                  if choice["delta"].get("tool_calls")]
    assert len(with_calls) == 1 and with_calls[0]["logprobs"]["content"]
    tokens = [entry for p in payloads for choice in p["choices"] if choice["logprobs"]
              for entry in choice["logprobs"]["content"]]
    assert len(tokens) == payloads[-1]["usage"]["completion_tokens"]


def test_tokenize_matches_prompt_tokens(worker: str) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *QUESTION]
    counted = httpx.post(f"{worker}/tokenize", json={
        "model": MODEL, "messages": messages, "tools": [WEATHER_TOOL],
        "add_generation_prompt": True}, headers=AUTH).json()
    assert counted["max_model_len"] == CONTEXT and counted["count"] == len(counted["tokens"])
    used = chat(worker, messages=messages, tools=[WEATHER_TOOL], max_tokens=1).json()
    assert counted["count"] == used["usage"]["prompt_tokens"]
    plain = httpx.post(f"{worker}/tokenize", json={"model": MODEL, "prompt": "hello"},
                       headers=AUTH).json()
    assert plain["count"] >= 1


def test_context_overflow_is_400(worker: str) -> None:
    response = chat(worker, messages=[{"role": "user", "content": "word " * (CONTEXT + 100)}])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"
    assert f"maximum context length is {CONTEXT} tokens" in error["message"]


def test_invalid_requests_use_openai_envelope(worker: str) -> None:
    bad = chat(worker, max_tokens=-1)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "max_tokens"
    malformed = httpx.post(f"{worker}/v1/chat/completions", content=b"{nope", headers=AUTH)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    unknown = chat(worker, model="gpt-9")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(("field", "value", "param"), [
    ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"a": {"type": "string", "maxLength": "long"}}}}},
     "response_format.json_schema.schema.properties.a.maxLength"),
    ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "array", "minItems": "many"}}}, "response_format.json_schema.schema.minItems"),
    ("tools", [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"a": 5}}}}],
     "tools[0].function.parameters.properties.a"),
])
def test_a_malformed_schema_is_the_callers_400_not_a_500(
    worker: str, field: str, value: object, param: str
) -> None:
    """Any client may reach the worker (another gateway, a script): a schema it cannot turn
    into a grammar is refused as the caller's, which a gateway does not count against it."""
    extra: dict[str, Any] = {field: value}
    if field == "tools":
        extra["tool_choice"] = "required"
    response = chat(worker, max_tokens=4, **extra)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_n_choices(worker: str) -> None:
    body = chat(worker, n=2, max_tokens=5, temperature=1.0, seed=3).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    raw = chat(worker, n=2, max_tokens=5, stream=True).content
    indexes = {p["choices"][0]["index"] for p in sse_payloads(raw)}
    assert indexes == {0, 1}


async def test_concurrent_requests_both_complete(worker: str) -> None:
    async with httpx.AsyncClient(base_url=worker, timeout=120, headers=AUTH) as client:
        bodies = [{"model": MODEL, "messages": QUESTION, "max_tokens": 10, "seed": s}
                  for s in (1, 2)]
        responses = await asyncio.gather(
            *(client.post("/v1/chat/completions", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [200, 200]
    assert all(r.json()["choices"][0]["message"]["content"] for r in responses)


def test_disconnect_frees_queue_and_health_stays_up(worker: str) -> None:
    with httpx.Client(base_url=worker, timeout=30, headers=AUTH) as client:
        body = {"model": MODEL, "messages": QUESTION, "stream": True,
                "response_format": LONG_OUTPUT}
        with client.stream("POST", "/v1/chat/completions", json=body) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("data: ")
            # The long generation is running: health must still answer.
            assert httpx.get(f"{worker}/health", timeout=5, headers=AUTH).status_code == 200
        # The stream was abandoned after one event; the forced 1500-number generation must have
        # been cancelled, or this short request would wait behind it past the timeout.
        quick = client.post("/v1/chat/completions", timeout=15, json={
            "model": MODEL, "messages": QUESTION, "max_tokens": 3})
    assert quick.status_code == 200
