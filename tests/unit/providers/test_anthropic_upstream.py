"""The Anthropic provider's token counts through /v1/messages/count_tokens."""

from __future__ import annotations

import httpx
import orjson
import pytest

from cometgate.canonical import GenerateRequest, Message, TextPart
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions
from cometgate.errors import FailureClass, UpstreamError
from cometgate.providers.anthropic_upstream import AnthropicUpstream
from cometgate.providers.base import CountsTokens, ForwardsCount, RawCall, Target
from cometgate.providers.timeouts import Timeouts

TARGET = Target(upstream_model="claude-up", model_version="alias", credential="sk-target")
REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))


def provider(answer: httpx.Response, seen: list[httpx.Request]) -> AnthropicUpstream:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return AnthropicUpstream(
        "anthropic", base_url="http://upstream.test/", api_key="sk-provider",
        options=AnthropicOptions(beta=("configured-beta",)), timeouts=Timeouts(),
        client=httpx.AsyncClient(transport=httpx.MockTransport(handle)))


async def test_a_translated_count() -> None:
    seen: list[httpx.Request] = []
    upstream = provider(httpx.Response(200, json={"input_tokens": 12}), seen)
    assert isinstance(upstream, CountsTokens) and isinstance(upstream, ForwardsCount)
    assert await upstream.count_tokens(REQUEST, TARGET) == 12
    (sent,) = seen
    assert str(sent.url) == "http://upstream.test/v1/messages/count_tokens"
    assert sent.headers["x-api-key"] == "sk-target"
    assert sent.headers["anthropic-beta"] == "configured-beta"
    assert orjson.loads(sent.content) == {"model": "claude-up", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}]}


async def test_a_rate_limited_count_can_fail_over() -> None:
    answer = httpx.Response(429, json={"type": "error", "error": {
        "type": "rate_limit_error", "message": "slow down"}}, headers={"retry-after": "3"})
    with pytest.raises(UpstreamError) as raised:
        await provider(answer, []).count_tokens(REQUEST, TARGET)
    assert raised.value.failure_class is FailureClass.RATE_LIMITED


async def test_a_forwarded_count_keeps_the_callers_version_beta_and_query() -> None:
    seen: list[httpx.Request] = []
    upstream = provider(httpx.Response(200, json={"input_tokens": 3}), seen)
    call = RawCall(b"", "v1", "count_tokens", document={"model": "alias", "messages": []},
                   headers=(("anthropic-version", "2024-01-01"), ("anthropic-beta", "mine")),
                   query="beta=true")
    answer = await upstream.forward_count(call, TARGET)
    assert (answer.body, answer.usage) == (b'{"input_tokens":3}', None)
    (sent,) = seen
    assert str(sent.url) == "http://upstream.test/v1/messages/count_tokens?beta=true"
    assert (sent.headers["anthropic-version"], sent.headers["anthropic-beta"]) == (
        "2024-01-01", "configured-beta,mine")
    assert orjson.loads(sent.content) == {"model": "claude-up", "messages": []}


async def test_a_forwarded_count_needs_its_parsed_body() -> None:
    upstream = provider(httpx.Response(200, json={"input_tokens": 3}), [])
    with pytest.raises(ValueError, match="parsed body"):
        await upstream.forward_count(RawCall(b"{}", "v1", "count_tokens"), TARGET)
