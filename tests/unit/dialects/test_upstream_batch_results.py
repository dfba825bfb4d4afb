"""What the gateway reads back from each upstream's own batch API: a job's state, and every
request's outcome — succeeded (its answer, in the upstream's dialect), errored (the failure
the live path would classify), cancelled or expired — from each provider's wire format."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cometgate.dialects.anthropic import upstream_batch as anthropic
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
)
from cometgate.dialects.gemini import upstream_batch as gemini
from cometgate.dialects.openai import upstream_batch as openai
from cometgate.errors import FailureClass, UpstreamError


def _jsonl(*lines: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


# --- Gemini: an Operation `batches/…`, results inline or in a JSONL file ---

ANSWER = {"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}}]}


def test_gemini_submits_each_request_keyed_by_its_position() -> None:
    body = gemini.batch_body("nightly", [("0", {"contents": []}), ("1", {"contents": [1]})])
    assert body == {"batch": {"displayName": "nightly", "inputConfig": {"requests": {
        "requests": [{"request": {"contents": []}, "metadata": {"key": "0"}},
                     {"request": {"contents": [1]}, "metadata": {"key": "1"}}]}}}}


def test_a_running_gemini_batch_has_not_ended() -> None:
    state = gemini.read_operation(orjson.dumps(
        {"name": "batches/b1", "metadata": {"state": "BATCH_STATE_RUNNING"}}))
    assert state == JobState("batches/b1", ended=False)


def test_a_succeeded_gemini_batch_carries_its_inline_outcomes() -> None:
    operation = {"name": "batches/b1", "done": True,
                 "metadata": {"state": "BATCH_STATE_SUCCEEDED"},
                 "response": {"inlinedResponses": {"inlinedResponses": [
                     {"response": ANSWER, "metadata": {"key": "0"}},
                     {"error": {"code": 3, "message": "bad request"}, "metadata": {"key": "1"}},
                     {"error": {"code": 1, "message": "Cancelled"}, "metadata": {"key": "2"}},
                 ]}}}
    state = gemini.read_operation(orjson.dumps(operation))
    assert (state.ended, state.how) == (True, JOB_SUCCEEDED)
    first, second, third = state.outcomes
    assert (first.custom_id, first.kind, orjson.loads(first.body or b"")) == (
        "0", SUCCEEDED, ANSWER)
    assert (second.custom_id, second.kind) == ("1", ERRORED)
    assert second.error is not None
    assert (second.error.status, second.error.message) == ("INVALID_ARGUMENT", "bad request")
    assert (third.custom_id, third.kind) == ("2", CANCELLED)


@pytest.mark.parametrize(("state", "how"), [
    ("BATCH_STATE_FAILED", JOB_FAILED), ("BATCH_STATE_EXPIRED", JOB_EXPIRED),
    ("BATCH_STATE_CANCELLED", JOB_CANCELLED), ("JOB_STATE_SUCCEEDED", JOB_SUCCEEDED)])
def test_every_ended_gemini_state(state: str, how: str) -> None:
    operation = {"name": "batches/b2", "metadata": {"state": state}, "done": True,
                 "error": {"code": 3, "message": "input refused"}}
    read = gemini.read_operation(orjson.dumps(operation))
    assert (read.ended, read.how, read.error, read.outcomes) == (
        True, how, "input refused", ())


def test_gemini_results_in_a_file() -> None:
    operation = {"name": "batches/b3", "metadata": {"state": "BATCH_STATE_SUCCEEDED"},
                 "response": {"responsesFile": "files/out-1"}}
    assert gemini.read_operation(orjson.dumps(operation)).result_refs == ("files/out-1",)
    outcomes = gemini.read_results_file(_jsonl(
        {"key": "1", "response": ANSWER}, {"key": "0", "error": {"code": 8, "message": "q"}}))
    assert [(o.custom_id, o.kind) for o in outcomes] == [("1", SUCCEEDED), ("0", ERRORED)]
    assert outcomes[1].error is not None and outcomes[1].error.status == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize("body", [b"[]", b"not json", b'{"metadata": {}}'])
def test_an_unreadable_gemini_operation_is_a_transient_fault(body: bytes) -> None:
    with pytest.raises(UpstreamError) as failed:
        gemini.read_operation(body)
    assert failed.value.failure_class is FailureClass.TRANSIENT


# --- OpenAI: a JSONL input file, a batch object, output and error files ---

COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                           "finish_reason": "stop"}]}


def test_openai_input_file_lines() -> None:
    data = openai.input_file([("0", {"model": "gpt", "messages": []})])
    assert orjson.loads(data) == {"custom_id": "0", "method": "POST",
                                  "url": "/v1/chat/completions",
                                  "body": {"model": "gpt", "messages": []}}
    assert data.endswith(b"\n")
    assert openai.batch_body("file-1", "nightly") == {
        "input_file_id": "file-1", "endpoint": "/v1/chat/completions",
        "completion_window": "24h", "metadata": {"description": "nightly"}}


@pytest.mark.parametrize(("status", "ended", "how"), [
    ("validating", False, None), ("in_progress", False, None), ("finalizing", False, None),
    ("cancelling", False, None), ("completed", True, JOB_SUCCEEDED),
    ("failed", True, JOB_FAILED), ("expired", True, JOB_EXPIRED),
    ("cancelled", True, JOB_CANCELLED)])
def test_every_openai_batch_status(status: str, ended: bool, how: str | None) -> None:
    batch = {"id": "batch_1", "object": "batch", "status": status,
             "output_file_id": "file-out" if ended else None,
             "error_file_id": "file-err" if ended else None,
             "errors": {"data": [{"code": "invalid_json", "message": "line 2 is bad"}]}}
    state = openai.read_batch(orjson.dumps(batch))
    assert (state.upstream_id, state.ended, state.how) == ("batch_1", ended, how)
    if ended:
        assert state.result_refs == ("file-out", "file-err")
        assert state.error == "line 2 is bad"


def test_openai_output_and_error_lines() -> None:
    outcomes = openai.read_results(_jsonl(
        {"id": "r1", "custom_id": "0", "error": None,
         "response": {"status_code": 200, "request_id": "q1", "body": COMPLETION}},
        {"id": "r2", "custom_id": "1", "error": None,
         "response": {"status_code": 400, "request_id": "q2", "body": {"error": {
             "message": "bad messages", "type": "invalid_request_error", "code": None}}}},
        {"id": "r3", "custom_id": "2", "response": None,
         "error": {"code": "batch_expired", "message": "not run in time"}},
        {"id": "r4", "custom_id": "3", "response": None,
         "error": {"code": "batch_cancelled", "message": "cancelled"}},
        {"id": "r5", "custom_id": "4", "response": None,
         "error": {"code": "server_error", "message": "boom"}},
    ))
    assert [(o.custom_id, o.kind) for o in outcomes] == [
        ("0", SUCCEEDED), ("1", ERRORED), ("2", EXPIRED), ("3", CANCELLED), ("4", ERRORED)]
    assert orjson.loads(outcomes[0].body or b"") == COMPLETION
    refused, failed = outcomes[1].error, outcomes[4].error
    assert refused is not None and failed is not None
    assert (refused.failure_class, refused.message) == (FailureClass.CALLER_FAULT,
                                                        "bad messages")
    assert failed.failure_class is FailureClass.TRANSIENT


# --- Anthropic: a message batch, results JSONL from its results_url ---

MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
           "usage": {"input_tokens": 3, "output_tokens": 1}}


def test_anthropic_batch_body() -> None:
    assert anthropic.batch_body([("0", {"model": "claude", "max_tokens": 5})]) == {
        "requests": [{"custom_id": "0", "params": {"model": "claude", "max_tokens": 5}}]}


@pytest.mark.parametrize(("batch", "ended", "how"), [
    ({"processing_status": "in_progress"}, False, None),
    ({"processing_status": "canceling"}, False, None),
    ({"processing_status": "ended", "request_counts": {"succeeded": 2}}, True, JOB_SUCCEEDED),
    ({"processing_status": "ended", "request_counts": {"succeeded": 1, "expired": 1}}, True,
     JOB_EXPIRED),
    ({"processing_status": "ended", "cancel_initiated_at": "2026-01-01T00:00:00Z",
      "request_counts": {"succeeded": 1, "canceled": 1}}, True, JOB_CANCELLED),
])
def test_every_anthropic_processing_status(batch: dict[str, Any], ended: bool,
                                           how: str | None) -> None:
    document = {"id": "msgbatch_1", "type": "message_batch",
                "results_url": "https://api.example/v1/messages/batches/msgbatch_1/results"
                if ended else None, **batch}
    state = anthropic.read_batch(orjson.dumps(document))
    assert (state.upstream_id, state.ended, state.how) == ("msgbatch_1", ended, how)
    assert state.result_refs == ((document["results_url"],) if ended else ())


def test_anthropic_result_lines() -> None:
    outcomes = anthropic.read_results(_jsonl(
        {"custom_id": "0", "result": {"type": "succeeded", "message": MESSAGE}},
        {"custom_id": "1", "result": {"type": "errored", "error": {
            "type": "error", "error": {"type": "invalid_request_error",
                                       "message": "max_tokens: required"}}}},
        {"custom_id": "2", "result": {"type": "canceled"}},
        {"custom_id": "3", "result": {"type": "expired"}},
        {"custom_id": "4", "result": {"type": "errored", "error": {
            "type": "error", "error": {"type": "overloaded_error", "message": "busy"}}}},
    ))
    assert [(o.custom_id, o.kind) for o in outcomes] == [
        ("0", SUCCEEDED), ("1", ERRORED), ("2", CANCELLED), ("3", EXPIRED), ("4", ERRORED)]
    assert orjson.loads(outcomes[0].body or b"") == MESSAGE
    refused, busy = outcomes[1].error, outcomes[4].error
    assert refused is not None and busy is not None
    assert (refused.failure_class, refused.status, refused.message) == (
        FailureClass.CALLER_FAULT, "INVALID_ARGUMENT", "max_tokens: required")
    assert busy.failure_class is FailureClass.TRANSIENT


def test_an_anthropic_result_of_unknown_type_is_unreadable() -> None:
    with pytest.raises(UpstreamError) as failed:
        anthropic.read_results(_jsonl({"custom_id": "0", "result": {"type": "pending"}}))
    assert "unreadable upstream response" in failed.value.message
