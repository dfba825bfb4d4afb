"""Batches whose requests come in a file and whose results go out as one (Gemini's JSONL
format): the input is a file of the caller's, uploaded through the Files API, one
`{"key": …, "request": GenerateContentRequest}` per line; the results are a file the gateway
makes when the batch has ended, one `{"key": …, "response": …}` or `{"key": …, "error": …}`
per request, in input order, downloadable through the Files API (`source: GENERATED`).

The result file is made by whoever first shows the ended batch (a poll on any replica);
`BatchStore.set_output_file` is conditional, so of two replicas racing, one file is kept and
the other is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cometgate.api.file_objects import refusal
from cometgate.dialects.gemini.batches import BatchItem, inline_item
from cometgate.errors import InvalidRequest
from cometgate.storage.batches import Batch, BatchStore, ItemResult
from cometgate.storage.file_store import GENERATED, FileStore, FileStoreError

RESULTS_MIME_TYPE = "application/jsonl"
FILE_PATH = "batch.input_config.file_name"


@dataclass(frozen=True, slots=True)
class BatchFiles:
    files: FileStore
    store: BatchStore

    async def requests(self, key_id: int, file_name: str, max_requests: int
                       ) -> tuple[BatchItem, ...]:
        """The requests of a JSONL file of the key's; refused as the Files API refuses a
        missing or foreign file, or naming the first bad line."""
        file_id = file_name.removeprefix("files/")
        try:
            data = await self.files.read_bytes(key_id, file_id)
        except FileStoreError as exc:
            raise refusal(exc) from None
        lines = [(n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip()]
        if not lines:
            raise _bad(f"{file_name} holds no requests.")
        if len(lines) > max_requests:
            raise _bad(f"A batch may hold at most {max_requests} requests; {file_name} has "
                       f"{len(lines)}.")
        return tuple(_line_item(file_name, n, line) for n, line in lines)

    async def output_file(self, batch: Batch, results: Sequence[ItemResult],
                          unrun: dict[str, dict[str, Any]]) -> str:
        """The name of the ended batch's result file, made now if it has none yet."""
        if batch.output_file is not None:
            return batch.output_file
        body = b"".join(orjson.dumps(_result_line(r, unrun)) + b"\n" for r in results)
        made = await self.files.create(batch.key_id, f"batch-{batch.id}-results.jsonl",
                                       RESULTS_MIME_TYPE, body, source=GENERATED)
        kept = await self.store.set_output_file(batch.id, made.name)
        if kept != made.name:
            await self.files.delete(batch.key_id, made.id)  # another poll made it first
        return kept


def _line_item(file_name: str, number: int, line: bytes) -> BatchItem:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise _bad(f"Line {number} of {file_name} is not a JSON object.") from None
    if not isinstance(document, dict) or "key" not in document:
        raise _bad(f"Line {number} of {file_name} must be a JSON object with a key and a "
                   "request.")
    return inline_item(document, f"{file_name}[line {number}]")


def _result_line(result: ItemResult, unrun: dict[str, dict[str, Any]]) -> dict[str, Any]:
    line: dict[str, Any] = {}
    if isinstance(result.metadata, dict) and "key" in result.metadata:
        line["key"] = result.metadata["key"]
    if result.result is not None:
        line.update(result.result)
    else:
        line["error"] = unrun.get(result.state, unrun["cancelled"])
    return line


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, violations={FILE_PATH: message})
