"""The Batch API's wire shapes: the batch resource as google-genai parses it (pending,
then ended with inline results or a result file), a request's error as a google.rpc.Status,
and what an inline request and a JSONL line read as."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.genai import batches as sdk_batches
from google.genai import types

from cometgate.dialects.gemini.batches import (
    BatchView,
    encode_batch,
    encode_batch_list,
    inline_item,
    item_error,
)
from cometgate.errors import BudgetExhausted, InternalError, InvalidRequest, NotFound

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 5, 1, 12, 5, 30, 250000, tzinfo=UTC)


def _view(state: str, **changes: object) -> BatchView:
    fields: dict[str, object] = dict(
        id="abc", model="m", display_name="nightly", state=state, created_at=T0,
        updated_at=T1, ended_at=None, request_count=2, succeeded=0, failed=0, pending=2,
        input_file=None, output_file=None, inlined=None)
    fields.update(changes)
    return BatchView(**fields)  # type: ignore[arg-type]


def _parsed(operation: dict[str, object]) -> types.BatchJob:
    """The batch as google-genai reads the wire (its own converter, then its type)."""
    return types.BatchJob._from_response(
        response=sdk_batches._BatchJob_from_mldev(operation), kwargs={})


def test_a_pending_batch_is_an_unfinished_operation() -> None:
    operation = encode_batch(_view("BATCH_STATE_PENDING"))
    assert operation == {"name": "batches/abc", "metadata": {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "model": "models/m", "displayName": "nightly", "createTime": "2026-05-01T12:00:00.000000Z",
        "updateTime": "2026-05-01T12:05:30.250000Z",
        "batchStats": {"requestCount": "2", "successfulRequestCount": "0",
                       "failedRequestCount": "0", "pendingRequestCount": "2"},
        "state": "BATCH_STATE_PENDING", "name": "batches/abc"}}
    job = _parsed(operation)
    assert (job.name, job.state, job.display_name, job.model, job.dest) == (
        "batches/abc", types.JobState.JOB_STATE_PENDING, "nightly", "models/m", None)


def test_an_ended_batch_carries_its_results_in_order() -> None:
    inlined = [{"response": {"candidates": [{"content": {"parts": [{"text": "one"}]}}]},
                "metadata": {"key": "a"}},
               {"error": {"code": 3, "message": "bad"}, "metadata": {"key": "b"}}]
    operation = encode_batch(_view("BATCH_STATE_SUCCEEDED", ended_at=T1, succeeded=1,
                                   failed=1, pending=0, inlined=inlined))
    assert operation["done"] is True
    assert operation["response"] == {
        "@type": ("type.googleapis.com/google.ai.generativelanguage.v1main."
                  "GenerateContentBatchOutput"),
        "inlinedResponses": {"inlinedResponses": inlined}}
    job = _parsed(operation)
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED and job.end_time == T1
    assert job.dest is not None and job.dest.inlined_responses is not None
    first, second = job.dest.inlined_responses
    assert first.response is not None and first.response.text == "one"
    assert (first.metadata, second.metadata) == ({"key": "a"}, {"key": "b"})
    assert second.error is not None and second.error.code == 3


def test_a_file_batch_names_its_input_and_result_files() -> None:
    operation = encode_batch(_view("BATCH_STATE_CANCELLED", ended_at=T1, pending=0,
                                   input_file="files/in", output_file="files/out"))
    metadata = operation["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["inputConfig"] == {"fileName": "files/in"}
    assert metadata["output"] == {"responsesFile": "files/out"}
    job = _parsed(operation)
    assert job.state == types.JobState.JOB_STATE_CANCELLED
    assert job.dest is not None and job.dest.file_name == "files/out"


def test_a_list_page_names_the_next_one() -> None:
    page = encode_batch_list([_view("BATCH_STATE_RUNNING")], "50")
    assert [op["name"] for op in page["operations"]] == ["batches/abc"]
    assert page["nextPageToken"] == "50"
    assert encode_batch_list([], None) == {"operations": []}


@pytest.mark.parametrize(("error", "code"), [
    (InvalidRequest("x"), 3), (NotFound("x"), 5), (BudgetExhausted("x"), 8),
    (InternalError("x"), 13)])
def test_a_requests_error_is_a_google_rpc_status(error: Exception, code: int) -> None:
    assert item_error(error) == {"code": code, "message": "x"}  # type: ignore[arg-type]


def test_an_inline_request_and_a_jsonl_line_read_the_same_way() -> None:
    request = {"model": "models/m", "contents": [{"parts": [{"text": "hi"}]}]}
    inline = inline_item({"request": request, "metadata": {"key": "k"}}, "r[0]")
    line = inline_item({"key": "k", "request": request}, "files/x[line 1]")
    assert inline == line
    assert inline.request == {"contents": [{"parts": [{"text": "hi"}]}]}  # no model of its own
    assert inline_item({"request": request}, "r[0]").metadata is None
