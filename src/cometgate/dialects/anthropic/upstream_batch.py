"""Anthropic's Message Batches API as an upstream (`/v1/messages/batches`): the batch the
gateway creates — `{"requests": [{"custom_id", "params"}]}`, each `params` a Messages request
as the outbound codec writes it — and the batch and its results read back.

A batch's `processing_status` is in_progress, canceling or ended; an ended one has a
`results_url` serving JSONL, one `{"custom_id", "result"}` a line, the result's `type`
succeeded (with the `message`), errored (with an error response `{"type": "error", "error":
{"type", "message"}}`), canceled or expired. The batch as a whole never fails: a batch that
was cancelled or expired says so in its `request_counts`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.dialects.anthropic.error_types import STATUS_OF_ERROR_TYPE
from cometgate.dialects.anthropic.upstream_errors import classify_error
from cometgate.dialects.batch_jobs import (
    CANCELLED,
    ERRORED,
    EXPIRED,
    JOB_CANCELLED,
    JOB_EXPIRED,
    JOB_SUCCEEDED,
    SUCCEEDED,
    JobState,
    Outcome,
    job_lines,
    json_object,
)
from cometgate.dialects.upstream_answers import unreadable

PATH = "/v1/messages/batches"
_RESULT_KINDS = {"succeeded": SUCCEEDED, "errored": ERRORED, "canceled": CANCELLED,
                 "expired": EXPIRED}


def batch_body(entries: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {"requests": [{"custom_id": custom_id, "params": params}
                         for custom_id, params in entries]}


def read_batch(body: bytes) -> JobState:
    document = json_object(body, "the message batch")
    ident = document.get("id")
    if not isinstance(ident, str):
        raise unreadable("the message batch has no id")
    if document.get("processing_status") != "ended":
        return JobState(ident, ended=False)
    counts = document.get("request_counts")
    counts = counts if isinstance(counts, dict) else {}
    how = (JOB_CANCELLED if document.get("cancel_initiated_at") and counts.get("canceled")
           else JOB_EXPIRED if counts.get("expired") else JOB_SUCCEEDED)
    url = document.get("results_url")
    return JobState(ident, True, how, result_refs=(url,) if isinstance(url, str) else ())


def read_results(data: bytes) -> tuple[Outcome, ...]:
    return tuple(_outcome(json_object(line, "a batch result line")) for line in job_lines(data))


def _outcome(line: dict[str, Any]) -> Outcome:
    custom_id = str(line.get("custom_id"))
    result = line.get("result")
    kind = _RESULT_KINDS.get(str(result.get("type"))) if isinstance(result, dict) else None
    if result is None or kind is None or not isinstance(result, dict):
        raise unreadable("a batch result line has no result of a known type")
    if kind == SUCCEEDED:
        return Outcome(custom_id, SUCCEEDED, body=orjson.dumps(result.get("message")))
    if kind != ERRORED:
        return Outcome(custom_id, kind)
    envelope = result.get("error")
    error = envelope.get("error") if isinstance(envelope, dict) else None
    error_type = error.get("type") if isinstance(error, dict) else None
    status = STATUS_OF_ERROR_TYPE.get(str(error_type), 500)
    return Outcome(custom_id, ERRORED,
                   error=classify_error(status, {}, orjson.dumps(envelope or {})))

