"""Anthropic's Message Batches API: `POST /v1/messages/batches` with every request's params,
polled with `GET /v1/messages/batches/{id}`, cancelled with `POST …/{id}/cancel`; results
JSONL from the ended batch's `results_url` (asked with the same credential)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.dialects.anthropic.upstream_batch import PATH, batch_body, read_batch, read_results
from cometgate.dialects.batch_jobs import JobState, Outcome
from cometgate.dialects.upstream_codec import OutboundCodec
from cometgate.providers.batch_http import BatchHttp


class AnthropicBatchApi:
    def __init__(self, base_url: str, codec: OutboundCodec, http: BatchHttp) -> None:
        self.kind = "anthropic"
        self._root = base_url.rstrip("/")
        self.codec: OutboundCodec | None = codec
        self._http = http

    async def submit(self, upstream_model: str, display_name: str,
                     entries: Sequence[tuple[str, dict[str, Any]]],
                     headers: dict[str, str]) -> str:
        answer = await self._http.call("POST", self._root + PATH,
                                       json=orjson.dumps(batch_body(entries)), headers=headers)
        return read_batch(answer).upstream_id

    async def state(self, upstream_id: str) -> JobState:
        return read_batch(await self._http.call("GET", f"{self._root}{PATH}/{upstream_id}"))

    async def outcomes(self, state: JobState) -> tuple[Outcome, ...]:
        if not state.result_refs:
            return ()
        return read_results(await self._http.call("GET", state.result_refs[0]))

    async def cancel(self, upstream_id: str) -> None:
        await self._http.call("POST", f"{self._root}{PATH}/{upstream_id}/cancel", json=b"{}")

    async def aclose(self) -> None:
        await self._http.aclose()
