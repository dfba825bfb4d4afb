"""The Anthropic fake's Message Batches API, in Anthropic's wire format: `POST
/v1/messages/batches` (`{"requests": [{"custom_id", "params"}]}`, each params validated as
`/v1/messages` validates a request) → a `message_batch`; `GET …/{id}` (`processing_status`
in_progress → ended, `request_counts`, `results_url`); `POST …/{id}/cancel` (canceling);
`GET …/{id}/results` (JSONL, `{"custom_id", "result": {"type": succeeded | errored |
canceled | expired, …}}` a line). Every call must carry an x-api-key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.batch_jobs import BatchLog, FakeJob

_COUNTS = {"answered": "succeeded", "errored": "errored", "cancelled": "canceled",
           "expired": "expired"}


class AnthropicBatches:
    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]],
                 validate: Callable[[dict[str, Any]], str | None]) -> None:
        self.log = BatchLog()
        self._answer = answer  # a Messages request → the fake's Message
        self._validate = validate  # a Messages request → why it is refused, or None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/messages/batches", self._create, methods=["POST"]),
            Route("/v1/messages/batches/{ident}", self._get, methods=["GET"]),
            Route("/v1/messages/batches/{ident}/cancel", self._cancel, methods=["POST"]),
            Route("/v1/messages/batches/{ident}/results", self._results, methods=["GET"]),
        ]

    async def _create(self, request: Request) -> Response:
        self.log.calls.append(("POST", request.url.path))
        if not request.headers.get("x-api-key"):
            return _error(401, "authentication_error", "x-api-key header is required")
        refused = self.log.submit_refusal()
        if refused is not None:
            kind = "overloaded_error" if refused >= 500 else "invalid_request_error"
            return _error(refused, kind, f"fake batch refusal {refused}")
        try:
            entries = [(str(r["custom_id"]), r["params"])
                       for r in orjson.loads(await request.body())["requests"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _error(400, "invalid_request_error", "requests: Field required")
        for index, (_, params) in enumerate(entries):
            problem = self._validate(params)
            if problem is not None:
                return _error(400, "invalid_request_error", f"requests.{index}.params.{problem}")
        job = self.log.new_job("msgbatch_fake", entries)
        return _json(self._batch(job, str(request.base_url)))

    async def _get(self, request: Request) -> Response:
        self.log.calls.append(("GET", request.url.path))
        job = self.log.jobs.get(request.path_params["ident"])
        if job is None:
            return _error(404, "not_found_error", "Not found")
        job.poll(self.log.script)
        return _json(self._batch(job, str(request.base_url)))

    async def _cancel(self, request: Request) -> Response:
        self.log.calls.append(("POST", request.url.path))
        job = self.log.jobs.get(request.path_params["ident"])
        if job is None:
            return _error(404, "not_found_error", "Not found")
        job.cancelled = True
        return _json(self._batch(job, str(request.base_url)))

    async def _results(self, request: Request) -> Response:
        self.log.calls.append(("GET", request.url.path))
        job = self.log.jobs.get(request.path_params["ident"])
        if job is None or job.ended is None:
            return _error(404, "not_found_error", "Not found")
        lines = [{"custom_id": custom_id, "result": self._result(params, outcome)}
                 for custom_id, params, outcome in job.answered(self.log.script)]
        return Response(b"".join(orjson.dumps(line) + b"\n" for line in lines),
                        media_type="application/binary")

    def _result(self, params: dict[str, Any], outcome: str) -> dict[str, Any]:
        if outcome == "answered":
            return {"type": "succeeded", "message": self._answer(params)}
        if outcome == "errored":
            return {"type": "errored", "error": {"type": "error", "error": {
                "type": "invalid_request_error", "message": "fake: this request was refused"}}}
        return {"type": _COUNTS[outcome]}

    def _batch(self, job: FakeJob, base_url: str) -> dict[str, Any]:
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled",
                                "expired"), 0)
        ended = job.ended is not None
        if ended:
            for _, _, outcome in job.answered(self.log.script):
                counts[_COUNTS[outcome]] += 1
        else:
            counts["processing"] = len(job.requests)
        return {
            "id": job.id, "type": "message_batch",
            "processing_status": ("ended" if ended else
                                  "canceling" if job.cancelled else "in_progress"),
            "request_counts": counts,
            "ended_at": "2026-01-01T00:10:00Z" if ended else None,
            "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z",
            "archived_at": None,
            "cancel_initiated_at": "2026-01-01T00:05:00Z" if job.cancelled else None,
            "results_url": f"{base_url}v1/messages/batches/{job.id}/results" if ended else None,
        }


def _json(document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


def _error(status: int, kind: str, message: str) -> Response:
    envelope = {"type": "error", "error": {"type": kind, "message": message},
                "request_id": "req_fakebatch"}
    return Response(orjson.dumps(envelope), status_code=status, media_type="application/json")
