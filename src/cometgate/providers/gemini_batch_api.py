"""Gemini's Batch API: `POST models/{m}:batchGenerateContent` → an Operation `batches/…`,
polled with `GET batches/{id}`, cancelled with `POST batches/{id}:cancel`; results inline in
the finished Operation, or in a file downloaded from `/download/v1beta/{file}:download`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.dialects.batch_jobs import JobState, Outcome
from cometgate.dialects.gemini.upstream_batch import (
    batch_body,
    read_operation,
    read_results_file,
)
from cometgate.dialects.upstream_codec import OutboundCodec
from cometgate.providers.batch_http import BatchHttp


class GeminiBatchApi:
    def __init__(self, base_url: str, http: BatchHttp) -> None:
        self.kind = "gemini"
        self.codec: OutboundCodec | None = None  # the callers' requests go as they are
        self._root = base_url.rstrip("/")
        self._http = http

    async def submit(self, upstream_model: str, display_name: str,
                     entries: Sequence[tuple[str, dict[str, Any]]],
                     headers: dict[str, str]) -> str:
        model = upstream_model if "/" in upstream_model else f"models/{upstream_model}"
        answer = await self._http.call(
            "POST", f"{self._root}/v1beta/{model}:batchGenerateContent",
            json=orjson.dumps(batch_body(display_name, entries)), headers=headers)
        return read_operation(answer).upstream_id

    async def state(self, upstream_id: str) -> JobState:
        return read_operation(await self._http.call("GET", f"{self._root}/v1beta/{upstream_id}"))

    async def outcomes(self, state: JobState) -> tuple[Outcome, ...]:
        if not state.result_refs:
            return state.outcomes
        data = await self._http.call(
            "GET", f"{self._root}/download/v1beta/{state.result_refs[0]}:download?alt=media")
        return read_results_file(data)

    async def cancel(self, upstream_id: str) -> None:
        await self._http.call("POST", f"{self._root}/v1beta/{upstream_id}:cancel", json=b"{}")

    async def aclose(self) -> None:
        await self._http.aclose()
