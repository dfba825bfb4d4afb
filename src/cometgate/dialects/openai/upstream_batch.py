"""OpenAI's Batch API as an upstream (`/v1/files`, `/v1/batches`): the JSONL input file the
gateway uploads — one `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`
per request, the body a Chat Completions request as the outbound codec writes it — and the
batch object and its output / error files read back.

A batch's `status`: validating, in_progress, finalizing, cancelling (running); completed,
failed, expired, cancelled (ended). An output line is `{"id", "custom_id", "response":
{"status_code", "request_id", "body"}, "error": null}`; an error-file line carries `error`
(`{"code", "message"}`) or a non-200 `response`. Requests an expired or cancelled batch did
not run appear in the error file with code `batch_expired` / `batch_cancelled`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.dialects.batch_jobs import (
    CANCELLED,
    ERRORED,
    EXPIRED,
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
from cometgate.dialects.openai.upstream_errors import classify_error
from cometgate.dialects.upstream_answers import unreadable

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"  # the only window OpenAI offers
_ENDED = {"completed": JOB_SUCCEEDED, "failed": JOB_FAILED, "expired": JOB_EXPIRED,
          "cancelled": JOB_CANCELLED}
_UNRUN = {"batch_expired": EXPIRED, "batch_cancelled": CANCELLED}


def input_file(entries: Sequence[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(orjson.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT,
                                  "body": body}) + b"\n" for custom_id, body in entries)


def batch_body(input_file_id: str, display_name: str) -> dict[str, Any]:
    return {"input_file_id": input_file_id, "endpoint": ENDPOINT,
            "completion_window": COMPLETION_WINDOW,
            "metadata": {"description": display_name[:512]}}


def read_file_id(body: bytes) -> str:
    ident = json_object(body, "the uploaded file").get("id")
    if not isinstance(ident, str):
        raise unreadable("the uploaded file has no id")
    return ident


def read_batch(body: bytes) -> JobState:
    document = json_object(body, "the batch")
    ident = document.get("id")
    if not isinstance(ident, str):
        raise unreadable("the batch has no id")
    how = _ENDED.get(str(document.get("status")))
    if how is None:
        return JobState(ident, ended=False)
    refs = tuple(ref for ref in (document.get("output_file_id"), document.get("error_file_id"))
                 if isinstance(ref, str))
    return JobState(ident, True, how, _errors_text(document.get("errors")), result_refs=refs)


def read_results(data: bytes) -> tuple[Outcome, ...]:
    """An output or error file: one outcome per line."""
    return tuple(_outcome(json_object(line, "a batch result line")) for line in job_lines(data))


def _outcome(line: dict[str, Any]) -> Outcome:
    custom_id = str(line.get("custom_id"))
    response = line.get("response")
    error = line.get("error")
    if isinstance(error, dict):
        unrun = _UNRUN.get(str(error.get("code")))
        if unrun is not None:
            return Outcome(custom_id, unrun)
        return Outcome(custom_id, ERRORED, error=classify_error(
            500, {}, orjson.dumps({"error": {"message": error.get("message"),
                                             "code": error.get("code")}})))
    if not isinstance(response, dict):
        raise unreadable("a batch result line has neither a response nor an error")
    status, body = response.get("status_code"), orjson.dumps(response.get("body"))
    if status == 200:
        return Outcome(custom_id, SUCCEEDED, body=body)
    return Outcome(custom_id, ERRORED,
                   error=classify_error(status if isinstance(status, int) else 500, {}, body))


def _errors_text(errors: object) -> str | None:
    """A failed batch's `errors.data[]` (a refused input file: each line's problem)."""
    data = errors.get("data") if isinstance(errors, dict) else None
    if not isinstance(data, list) or not data:
        return None
    return "; ".join(str(entry.get("message")) for entry in data if isinstance(entry, dict))

