"""Anthropic's count_tokens as an upstream speaks it: the translated body, the forwarded
body, headers and query, and reading the answer."""

from __future__ import annotations

import orjson
import pytest

from cometgate.canonical import (
    FunctionTool,
    GenerateRequest,
    GenerationParams,
    Message,
    OutputFormat,
    TextPart,
    ThinkingConfig,
)
from cometgate.dialects.anthropic.count_tokens import (
    caller_headers,
    caller_query,
    encode_count_request,
    forwarded_count_body,
    forwarded_headers,
    read_input_tokens,
)
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions
from cometgate.errors import InvalidRequest, UpstreamError

HELLO = (Message("user", (TextPart("hello"),)),)


def test_a_translated_count_keeps_what_shapes_the_prompt_only() -> None:
    request = GenerateRequest(
        model="alias", messages=HELLO, system=(TextPart("be brief"),),
        tools=(FunctionTool("lookup", "finds a thing"),),
        params=GenerationParams(temperature=1.7, top_k=3, max_output_tokens=4000,
                                stop_sequences=("END",)),
        thinking=ThinkingConfig(budget=2048))
    body = encode_count_request(request, "claude-up", AnthropicOptions())
    assert body == {
        "model": "claude-up",
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        "tools": [{"name": "lookup", "description": "finds a thing",
                   "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }


def test_a_json_answer_counts_as_the_forced_tool_that_carries_it() -> None:
    request = GenerateRequest(model="alias", messages=HELLO, output=OutputFormat("json"))
    body = encode_count_request(request, "claude-up", AnthropicOptions())
    assert body["tool_choice"] == {"type": "tool", "name": body["tools"][0]["name"]}


def test_a_translated_count_refuses_what_a_generation_would_refuse() -> None:
    """Sampling settings do not shape the prompt and are not checked; the prompt is."""
    request = GenerateRequest(model="alias", messages=HELLO, output=OutputFormat("json"),
                              tools=(FunctionTool("lookup"),),
                              params=GenerationParams(candidate_count=2))
    with pytest.raises(InvalidRequest, match="cannot be combined with function declarations"):
        encode_count_request(request, "claude-up", AnthropicOptions())


def test_a_forwarded_body_changes_only_the_model() -> None:
    document = {"model": "alias", "messages": [{"role": "user", "content": "hi"}],
                "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}
    assert orjson.loads(forwarded_count_body(document, "claude-up")) == {
        **document, "model": "claude-up"}
    assert document["model"] == "alias"  # the caller's document is left alone


def test_caller_headers_and_query_keep_only_what_the_upstream_reads() -> None:
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "a,b",
               "x-api-key": "cg-gateway-key", "authorization": "Bearer cg-gateway-key"}
    assert caller_headers(headers) == (("anthropic-version", "2023-06-01"),
                                       ("anthropic-beta", "a,b"))
    assert caller_query({"beta": "true", "key": "cg-gateway-key"}) == "beta=true"
    assert caller_query({"key": "cg-gateway-key"}) == ""


@pytest.mark.parametrize(("caller", "version", "beta"), [
    ((), "2023-06-01", "configured"),
    ((("anthropic-version", "2024-01-01"),), "2024-01-01", "configured"),
    ((("anthropic-beta", "mine, configured"),), "2023-06-01", "configured,mine"),
])
def test_forwarded_headers(caller: tuple[tuple[str, str], ...], version: str,
                           beta: str) -> None:
    configured = {"anthropic-version": "2023-06-01", "anthropic-beta": "configured",
                  "x-api-key": "sk-upstream"}
    assert forwarded_headers(configured, caller) == {
        "anthropic-version": version, "anthropic-beta": beta, "x-api-key": "sk-upstream"}


def test_forwarded_headers_without_any_beta() -> None:
    assert forwarded_headers({"anthropic-version": "2023-06-01"}, ()) == {
        "anthropic-version": "2023-06-01"}


def test_read_input_tokens() -> None:
    assert read_input_tokens(b'{"input_tokens": 42}') == 42


@pytest.mark.parametrize("body", [b'{"tokens": 3}', b'{"input_tokens": "3"}',
                                  b'{"input_tokens": -1}', b'{"input_tokens": true}',
                                  b"[3]", b"not json"])
def test_an_answer_without_a_count_is_unreadable(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="unreadable upstream response") as raised:
        read_input_tokens(body)
    assert raised.value.http_status == 502
