"""Gemini's own Batch API as an upstream: the `batchGenerateContent` body the gateway submits
(the callers' GenerateContentRequests as they sent them, each keyed by its position), and the
batch Operation and its results read back.

Google answers a batch as a long-running Operation `batches/…` whose `metadata` holds the
`GenerateContentBatch` (`state`: BATCH_STATE_*); once done, its output —
`inlinedResponses.inlinedResponses[]` (each a `response` or an `error`, with the `metadata` it
was sent with) or a `responsesFile` (JSONL, `{"key", "response" | "error"}` a line) — is in
`response` (and in `metadata.output`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.dialects.batch_jobs import (
    CANCELLED,
    ERRORED,
    JOB_CANCELLED,
    JOB_EXPIRED,
    JOB_FAILED,
    JOB_SUCCEEDED,
    SUCCEEDED,
    JobState,
    Outcome,
    job_lines,
    json_object,
)
from cometgate.dialects.gemini.batches import RPC_CODES
from cometgate.dialects.gemini.upstream_errors import classify_error, http_status_of
from cometgate.dialects.upstream_answers import unreadable
from cometgate.errors import UpstreamError

_ENDED = {"BATCH_STATE_SUCCEEDED": JOB_SUCCEEDED, "BATCH_STATE_FAILED": JOB_FAILED,
          "BATCH_STATE_CANCELLED": JOB_CANCELLED, "BATCH_STATE_EXPIRED": JOB_EXPIRED,
          "JOB_STATE_SUCCEEDED": JOB_SUCCEEDED, "JOB_STATE_FAILED": JOB_FAILED,
          "JOB_STATE_CANCELLED": JOB_CANCELLED, "JOB_STATE_EXPIRED": JOB_EXPIRED}
_STATUS_OF_CODE = {code: name for name, code in RPC_CODES.items()}


def batch_body(display_name: str, entries: Sequence[tuple[str, dict[str, Any]]]
               ) -> dict[str, Any]:
    return {"batch": {"displayName": display_name, "inputConfig": {"requests": {"requests": [
        {"request": request, "metadata": {"key": custom_id}}
        for custom_id, request in entries]}}}}


def read_operation(body: bytes) -> JobState:
    document = json_object(body, "the batch")
    name = document.get("name")
    metadata = document.get("metadata")
    if not isinstance(name, str) or not isinstance(metadata, dict):
        raise unreadable("the batch operation has no name or metadata")
    how = _ENDED.get(str(metadata.get("state")))
    if how is None:
        return JobState(name, ended=False)
    output = document.get("response") or metadata.get("output") or {}
    error = document.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(output, dict):
        output = {}
    file_name = output.get("responsesFile") or output.get("responses_file")
    if isinstance(file_name, str):
        return JobState(name, True, how, message, result_refs=(file_name,))
    inlined = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
    outcomes = tuple(_outcome(entry, str(i)) for i, entry in enumerate(inlined))
    return JobState(name, True, how, message, outcomes=outcomes)


def read_results_file(data: bytes) -> tuple[Outcome, ...]:
    """A `responsesFile`: one `{"key", "response" | "error"}` per line."""
    outcomes = []
    for number, line in enumerate(job_lines(data)):
        entry = json_object(line, "a batch result line")
        outcomes.append(_outcome({**entry, "metadata": {"key": entry.get("key")}}, str(number)))
    return tuple(outcomes)


def status_error(status: object) -> UpstreamError:
    """A google.rpc.Status of one request as the failure it reports, classified as a live
    call's error of that status would be."""
    fields = status if isinstance(status, dict) else {}
    code = fields.get("code")
    name = _STATUS_OF_CODE.get(code, "UNKNOWN") if isinstance(code, int) else "UNKNOWN"
    http = http_status_of(name)
    message = str(fields.get("message") or "The request failed upstream.")
    failure = classify_error(http, {}, orjson.dumps(
        {"error": {"code": http, "message": message, "status": name}}))
    failure.status = name  # as the upstream said it, whatever the live path would show
    failure.message = message
    return failure


def _outcome(entry: object, fallback_id: str) -> Outcome:
    if not isinstance(entry, dict):
        raise unreadable("a batch result is not an object")
    metadata = entry.get("metadata")
    key = metadata.get("key") if isinstance(metadata, dict) else None
    custom_id = str(key) if key is not None else fallback_id
    if isinstance(entry.get("response"), dict):
        return Outcome(custom_id, SUCCEEDED, body=orjson.dumps(entry["response"]))
    error = entry.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if code == RPC_CODES["CANCELLED"]:
        return Outcome(custom_id, CANCELLED)
    return Outcome(custom_id, ERRORED, error=status_error(error))

