"""OpenAI's Batch API: the requests uploaded as a JSONL file (`POST files`, purpose batch),
then `POST batches` for `/v1/chat/completions` in the 24 h window; polled with `GET
batches/{id}`, cancelled with `POST batches/{id}/cancel`; results from `GET
files/{id}/content` of its output and error files. Paths are relative to the provider's
base URL, which ends in its version segment (…/v1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.dialects.batch_jobs import JobState, Outcome
from cometgate.dialects.openai.upstream_batch import (
    batch_body,
    input_file,
    read_batch,
    read_file_id,
    read_results,
)
from cometgate.dialects.upstream_codec import OutboundCodec
from cometgate.providers.batch_http import BatchHttp


class OpenAIBatchApi:
    def __init__(self, base_url: str, codec: OutboundCodec, http: BatchHttp) -> None:
        self.kind = "openai"
        self._base = base_url.rstrip("/")
        self.codec: OutboundCodec | None = codec
        self._http = http

    async def submit(self, upstream_model: str, display_name: str,
                     entries: Sequence[tuple[str, dict[str, Any]]],
                     headers: dict[str, str]) -> str:
        uploaded = await self._http.call(
            "POST", f"{self._base}/files", data={"purpose": "batch"},
            files={"file": ("batch.jsonl", input_file(entries), "application/jsonl")})
        answer = await self._http.call(
            "POST", f"{self._base}/batches",
            json=orjson.dumps(batch_body(read_file_id(uploaded), display_name)),
            headers=headers)
        return read_batch(answer).upstream_id

    async def state(self, upstream_id: str) -> JobState:
        return read_batch(await self._http.call("GET", f"{self._base}/batches/{upstream_id}"))

    async def outcomes(self, state: JobState) -> tuple[Outcome, ...]:
        found: list[Outcome] = []
        for file_id in state.result_refs:
            found += read_results(
                await self._http.call("GET", f"{self._base}/files/{file_id}/content"))
        return tuple(found)

    async def cancel(self, upstream_id: str) -> None:
        await self._http.call("POST", f"{self._base}/batches/{upstream_id}/cancel", json=b"{}")

    async def aclose(self) -> None:
        await self._http.aclose()
