"""What the three fakes' batch APIs share: their jobs, how a test scripts them, and the log
that proves which calls arrived. Each provider's wire format is its own module's
(gemini_batches, openai_batches, anthropic_batches).

A job runs for `polls_to_finish` polls, then ends: every request answered (by the fake's own
live answer, echoing the request's last text), but those in `errored` (custom ids), which
fail; or, with `job_fails` / `expires`, the whole job fails / expires with no answer. A
cancelled job ends at its next poll with the requests before `answered_before_cancel`
answered and the rest cancelled."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BatchScript:
    polls_to_finish: int = 1
    submit_statuses: list[int] = field(default_factory=list)  # answered before one is taken
    errored: set[str] = field(default_factory=set)
    job_fails: bool = False
    expires: bool = False
    answered_before_cancel: int = 0


@dataclass
class FakeJob:
    id: str
    requests: list[tuple[str, dict[str, Any]]]  # (custom id, request in the dialect)
    polls: int = 0
    cancelled: bool = False
    ended: str | None = None  # succeeded | failed | expired | cancelled

    def poll(self, script: BatchScript) -> None:
        """One status read: the job moves on, and ends once it has been read enough."""
        self.polls += 1
        if self.ended is not None:
            return
        if self.cancelled:
            self.ended = "cancelled"
        elif self.polls >= script.polls_to_finish:
            self.ended = ("failed" if script.job_fails else "expired" if script.expires
                          else "succeeded")

    def answered(self, script: BatchScript) -> list[tuple[str, dict[str, Any], str]]:
        """(custom id, request, outcome: answered | errored | cancelled | expired) each."""
        found = []
        for index, (custom_id, request) in enumerate(self.requests):
            if self.ended == "cancelled" and index >= script.answered_before_cancel:
                outcome = "cancelled"
            elif self.ended == "expired":
                outcome = "expired"
            elif custom_id in script.errored:
                outcome = "errored"
            else:
                outcome = "answered"
            found.append((custom_id, request, outcome))
        return found


@dataclass
class BatchLog:
    """Every batch API call, as (method, path); and the jobs by id."""

    script: BatchScript = field(default_factory=BatchScript)
    calls: list[tuple[str, str]] = field(default_factory=list)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def submit_refusal(self) -> int | None:
        return self.script.submit_statuses.pop(0) if self.script.submit_statuses else None

    def new_job(self, prefix: str, requests: list[tuple[str, dict[str, Any]]]) -> FakeJob:
        job = FakeJob(f"{prefix}{next(self._ids)}", requests)
        self.jobs[job.id] = job
        return job

    def created(self, kind: str) -> int:
        """How many jobs were created (`kind` names the call that creates one)."""
        return sum(1 for method, path in self.calls if method == "POST" and kind in path)
