"""What the gateway reads from an upstream's own batch API, whichever it is (Gemini's
`batchGenerateContent`, OpenAI's `/v1/batches`, Anthropic's `/v1/messages/batches`): how far
a job is, and the outcome of each request, keyed by the id the gateway gave it (its position
in the caller's batch, as text)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cometgate.dialects.upstream_answers import unreadable
from cometgate.errors import UpstreamError

# How an ended upstream job ended.
JOB_SUCCEEDED = "succeeded"  # it ran; each request has its own outcome
JOB_FAILED = "failed"  # it did not run (its input was refused, …): `error` says why
JOB_EXPIRED = "expired"  # the upstream's window closed first
JOB_CANCELLED = "cancelled"

# A request's outcome in an ended job.
SUCCEEDED = "succeeded"
ERRORED = "errored"
CANCELLED = "cancelled"
EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class JobState:
    upstream_id: str
    ended: bool
    how: str | None = None  # JOB_* once ended
    error: str | None = None  # the upstream's words on a failed job
    # Where the results are: the outcomes themselves (Gemini inline), or the names of the
    # upstream's files / URLs to fetch them from.
    outcomes: tuple[Outcome, ...] = ()
    result_refs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    custom_id: str
    kind: str  # SUCCEEDED | ERRORED | CANCELLED | EXPIRED
    body: bytes | None = None  # a succeeded request's answer, in the upstream's own dialect
    error: UpstreamError | None = None  # an errored one's failure


def job_lines(data: bytes) -> list[bytes]:
    """The non-blank lines of a JSONL results file."""
    return [line for line in data.splitlines() if line.strip()]


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """`body` as a JSON object, or the upstream's answer is unreadable."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise unreadable(f"{what} is not a JSON object")
    return document
