"""Bodies that once made the gateway answer 500 with a traceback (found by fuzzing), each now a
400 in the caller's dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.api.bodies import SMOL
from tests.api.conftest import ClientOpener, SettingsBuilder, create_key
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

DEPTH = 1000
TOO_DEEP = "Invalid JSON payload: nested more than 64 levels deep."
EXTRA_MODELS = {
    "priced": {"provider": "fake", "input_token_limit": 1000, "output_token_limit": 100,
               "prices": {"input": "1", "output": "2"}},
    "embedder": {"task": "embed", "provider": "fake", "input_token_limit": 256},
}


def deep_schema(depth: int = DEPTH) -> str:
    """A JSON schema whose properties nest `depth` objects deep, as raw JSON text (orjson
    refuses to write documents this deep)."""
    return '{"type":"object","properties":{"a":' * depth + '{"type":"string"}' + "}}" * depth


def deep_list(depth: int = DEPTH) -> str:
    return "[" * depth + '"x"' + "]" * depth


def raw(template: dict[str, Any], marker: str, deep: str) -> bytes:
    return orjson.dumps(template).replace(orjson.dumps(marker), deep.encode())


@pytest.fixture
async def http(build_settings: SettingsBuilder,
               open_client: ClientOpener) -> AsyncIterator[httpx.AsyncClient]:
    settings = build_settings(models=EXTRA_MODELS)
    key = await create_key(settings)
    async with open_client(settings) as client:
        client.headers["x-goog-api-key"] = key
        client.headers["content-type"] = "application/json"
        yield client


GEMINI_DEEP = [
    (f"/v1beta/models/{SMOL}:generateContent", {
        "contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {"responseMimeType": "application/json",
                             "responseJsonSchema": "DEEP"}}, deep_schema()),
    (f"/v1beta/models/{SMOL}:generateContent", {
        "contents": [{"parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": "DEEP"}]}]},
     deep_schema()),
    (f"/v1beta/models/{SMOL}:streamGenerateContent", {
        "contents": [{"parts": [{"functionResponse": {"name": "f",
                                                      "response": {"r": "DEEP"}}}]}]},
     deep_list()),
    (f"/v1beta/models/{SMOL}:countTokens", {"contents": "DEEP"}, deep_list()),
    ("/v1beta/models/embedder:embedContent", {"content": {"parts": "DEEP"}}, deep_list()),
    ("/v1beta/models/embedder:batchEmbedContents", {"requests": "DEEP"}, deep_list()),
]


@pytest.mark.parametrize(("path", "template", "deep"), GEMINI_DEEP)
async def test_deep_json_is_400_for_gemini_callers(
    http: httpx.AsyncClient, path: str, template: dict[str, Any], deep: str,
) -> None:
    response = await http.post(path, content=raw(template, "DEEP", deep))
    assert response.status_code == 400
    assert response.json() == {"error": {"code": 400, "message": TOO_DEEP,
                                          "status": "INVALID_ARGUMENT"}}


OPENAI_DEEP = [
    ("/v1/chat/completions", {
        "model": SMOL, "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "s", "schema": "DEEP"}}}, deep_schema()),
    ("/v1/chat/completions", {
        "model": SMOL, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": "DEEP"}}]},
     deep_schema()),
    ("/v1/chat/completions", {"model": SMOL, "messages": "DEEP"}, deep_list()),
    ("/v1/embeddings", {"model": "embedder", "input": "DEEP"}, deep_list()),
]


@pytest.mark.parametrize(("path", "template", "deep"), OPENAI_DEEP)
async def test_deep_json_is_400_for_openai_callers(
    http: httpx.AsyncClient, path: str, template: dict[str, Any], deep: str,
) -> None:
    response = await http.post(path, content=raw(template, "DEEP", deep))
    assert response.status_code == 400
    assert response.json() == {"error": {"message": TOO_DEEP, "type": "invalid_request_error",
                                          "param": None, "code": None}}


ANTHROPIC_DEEP = [
    {"model": SMOL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
     "tools": [{"name": "f", "input_schema": "DEEP"}]},
    {"model": SMOL, "max_tokens": 10, "messages": "DEEP"},
]


@pytest.mark.parametrize("template", ANTHROPIC_DEEP)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_deep_json_is_400_for_anthropic_callers(
    http: httpx.AsyncClient, path: str, template: dict[str, Any],
) -> None:
    deep = deep_schema() if "tools" in template else deep_list()
    response = await http.post(path, content=raw(template, "DEEP", deep),
                               headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error", "message": TOO_DEEP}


async def test_sixty_four_levels_are_still_accepted(
    http: httpx.AsyncClient, upstream: FakeOpenAIUpstream,
) -> None:
    # 64 levels in all, the request's own object and lists included.
    body = raw({"contents": [{"parts": [{"text": "hi"}]}],
                "tools": [{"functionDeclarations": [{"name": "f", "parameters": "DEEP"}]}]},
               "DEEP", deep_schema(29))
    assert nesting_depth(body) == 64
    upstream.replies.append(Reply(text="fine"))
    response = await http.post(f"/v1beta/models/{SMOL}:generateContent", content=body)
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1]["tools"][0]["function"]["parameters"]
    assert nesting_depth(orjson.dumps(sent)) == 59


def nesting_depth(body: bytes) -> int:
    depth = deepest = 0
    for byte in body:  # the test's bodies hold no brackets inside strings
        depth += (byte in b"[{") - (byte in b"]}")
        deepest = max(deepest, depth)
    return deepest


HUGE = ["1e30", "1e300", "1" + "0" * 40]


@pytest.mark.parametrize("value", HUGE)
async def test_a_huge_gemini_output_limit_on_a_priced_model_is_400(
    http: httpx.AsyncClient, value: str,
) -> None:
    body = raw({"contents": [{"parts": [{"text": "hi"}]}],
                "generationConfig": {"maxOutputTokens": "N"}}, "N", value)
    response = await http.post("/v1beta/models/priced:generateContent", content=body)
    assert response.status_code == 400
    shown = format(float(value), "g")
    assert response.json()["error"]["message"] == (
        f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {shown}")


@pytest.mark.parametrize("value", HUGE)
async def test_a_huge_openai_output_limit_on_a_priced_model_is_forwarded_not_a_500(
    http: httpx.AsyncClient, upstream: FakeOpenAIUpstream, value: str,
) -> None:
    """Same-dialect pass-through: the upstream judges the field; the budget reservation is
    capped at the model's output limit rather than priced at 1e30 tokens."""
    upstream.replies.append(Reply(text="ok"))
    body = raw({"model": "priced", "max_tokens": "N",
                "messages": [{"role": "user", "content": "hi"}]}, "N", value)
    response = await http.post("/v1/chat/completions", content=body)
    assert response.status_code == 200
    assert upstream.requests[-1]["max_tokens"] == float(value)


@pytest.mark.parametrize("value", HUGE)
async def test_a_huge_anthropic_output_limit_on_a_priced_model_is_400(
    http: httpx.AsyncClient, value: str,
) -> None:
    body = raw({"model": "priced", "max_tokens": "N",
                "messages": [{"role": "user", "content": "hi"}]}, "N", value)
    response = await http.post("/v1/messages", content=body,
                               headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Input should be less than or equal to 2147483647"}


@pytest.mark.parametrize(("value", "message"), [
    ("1e300", "Input should be less than or equal to 2147483647"),
    ("1e30", "Input should be less than or equal to 2147483647"),
    ("9223372036854775808", "Input should be less than or equal to 2147483647"),
    ("-1e300", "Input should be greater than or equal to 0"),
    ("2.5", "Input should be a valid integer"),
])
async def test_an_anthropic_top_k_out_of_range_is_400(
    http: httpx.AsyncClient, value: str, message: str,
) -> None:
    body = raw({"model": SMOL, "max_tokens": 10, "top_k": "N",
                "messages": [{"role": "user", "content": "hi"}]}, "N", value)
    response = await http.post("/v1/messages", content=body,
                               headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error",
                                        "message": f"top_k: {message}"}


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/v1/chat/completions", "POST"),
    ("PUT", "/healthz", "GET, HEAD"),
    ("POST", "/v1beta/balance", "GET, HEAD"),
])
async def test_a_405_carries_allow(
    http: httpx.AsyncClient, method: str, path: str, allow: str,
) -> None:
    response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert "not allowed" in response.text
