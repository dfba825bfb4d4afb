"""An Anthropic Messages upstream. Generations go through the translating HttpProvider it
extends; token counts through Anthropic's `POST /v1/messages/count_tokens` — an Anthropic
caller's own count request forwarded, anyone else's translated."""

from __future__ import annotations

import httpx
import orjson

from cometgate.canonical import GenerateRequest
from cometgate.dialects.anthropic.codec import AnthropicCodec
from cometgate.dialects.anthropic.count_tokens import (
    COUNT_PATH,
    encode_count_request,
    forwarded_count_body,
    forwarded_headers,
    read_input_tokens,
)
from cometgate.dialects.anthropic.encode import AnthropicOptions
from cometgate.dialects.anthropic.errors import classify_error
from cometgate.providers.base import RawCall, RawResponse, Target
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
