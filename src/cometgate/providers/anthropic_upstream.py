"""An Anthropic Messages upstream. An Anthropic caller's generation is forwarded as it is
(dialects/anthropic/passthrough) and so is its count request, through Anthropic's
`POST /v1/messages/count_tokens`; callers of other dialects reach it through the translating
HttpProvider it extends, over the same connection pool, their counts translated."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import httpx
import orjson

from cometgate.canonical import GenerateRequest
from cometgate.dialects.anthropic.count_tokens import (
    COUNT_PATH,
    encode_count_request,
    forwarded_count_body,
    forwarded_headers,
    read_input_tokens,
)
from cometgate.dialects.anthropic.passthrough import (
    ForwardedMessageEvents,
    answer_for_caller,
    forwarded_body,
)
from cometgate.dialects.anthropic.upstream_codec import AnthropicCodec
from cometgate.dialects.anthropic.upstream_errors import classify_error
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions
from cometgate.providers.base import RawCall, RawChunk, RawResponse, Target
from cometgate.providers.http import HttpProvider
from cometgate.providers.timeouts import Timeouts


class AnthropicUpstream(HttpProvider):
    """`base_url` is the server root (https://api.anthropic.com)."""

    dialect = "anthropic"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None = None,
        options: AnthropicOptions,
        timeouts: Timeouts,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._anthropic = AnthropicCodec(options)
        super().__init__(name, base_url=base_url, api_key=api_key, codec=self._anthropic,
                         timeouts=timeouts, client=client)

    def searches_web(self) -> bool:
        return True  # Anthropic's web search server tool (dialects.anthropic.web_search)

    def runs_code(self) -> bool:
        return True  # Anthropic's code execution server tool (dialects.anthropic.code_execution)

    async def forward(self, call: RawCall, target: Target) -> RawResponse:
        body, headers = await self._transport.exchange(
            self._forward_url(call, target), self._forwarded(call, target),
            self._forward_headers(call, target, stream=False), classify_error)
        answer, usage = answer_for_caller(body, target.model_version)
        return RawResponse(answer, headers.get("content-type", "application/json"), usage)

    async def forward_stream(
        self, call: RawCall, target: Target
    ) -> AsyncGenerator[RawChunk, None]:
        """Events as they arrive; an error status, or an error event in place of
        message_start, raises before anything of the answer is yielded, so the pipeline can
        still fail over. A stream that ends before message_stop, with no error event to say
        why, fails as a transient upstream error."""
        events = ForwardedMessageEvents(target.model_version)
        chunks = self._transport.stream(
            self._forward_url(call, target), self._forwarded(call, target),
            self._forward_headers(call, target, stream=True), classify_error)
        async with aclosing(chunks):
            async for piece in chunks:
                for event in events.feed(piece):
                    if event.error is not None and not events.started:
                        raise event.error
                    yield RawChunk(event.data, event.usage, event.error)
        for event in events.close():
            yield RawChunk(event.data, event.usage, event.error)
        failure = events.early_end()
        if failure is not None:
            raise failure

    async def count_tokens(self, request: GenerateRequest, target: Target) -> int:
        body = encode_count_request(request, target.upstream_model, self._anthropic.options)
        answer = await self._exchange(self._base_url + COUNT_PATH, orjson.dumps(body), target)
        return read_input_tokens(answer)

    async def forward_count(self, call: RawCall, target: Target) -> RawResponse:
        """The upstream's own answer, read for nothing: a count is not usage."""
        if call.document is None:
            raise ValueError("an Anthropic count call carries its parsed body")
        headers = forwarded_headers(
            self._anthropic.headers(self._credential(target), stream=False), call.headers)
        url = self._base_url + COUNT_PATH + (f"?{call.query}" if call.query else "")
        answer, answered = await self._transport.exchange(
            url, forwarded_count_body(call.document, target.upstream_model), headers,
            classify_error)
        return RawResponse(answer, answered.get("content-type", "application/json"), None)

    def _forward_url(self, call: RawCall, target: Target) -> str:
        url = self._url(target, stream=call.stream)
        return f"{url}?{call.query}" if call.query else url

    def _forwarded(self, call: RawCall, target: Target) -> bytes:
        if call.document is None:
            raise ValueError("an Anthropic-dialect call carries its parsed body")
        return forwarded_body(call.body, call.document, target.upstream_model)

    def _forward_headers(self, call: RawCall, target: Target, *, stream: bool) -> dict[str, str]:
        own = self._anthropic.headers(self._credential(target), stream=stream)
        return forwarded_headers(own, call.headers)
