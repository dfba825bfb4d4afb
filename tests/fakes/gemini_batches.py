"""The Gemini fake's Batch API, in Google's wire format: `POST
models/{m}:batchGenerateContent` (inline requests) → an Operation `batches/…`; `GET
batches/{id}` (the Operation: `metadata.state` BATCH_STATE_*, and once done the output in
`response` — `inlinedResponses.inlinedResponses[]`, or a `responsesFile` with
`results_as_file`); `POST batches/{id}:cancel`; the results file from `GET
/download/v1beta/files/{id}:download?alt=media`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.batch_jobs import BatchLog, FakeJob

JSON_TYPE = "application/json; charset=UTF-8"
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = ("type.googleapis.com/google.ai.generativelanguage.v1main."
               "GenerateContentBatchOutput")
_STATES = {None: "BATCH_STATE_RUNNING", "succeeded": "BATCH_STATE_SUCCEEDED",
           "failed": "BATCH_STATE_FAILED", "expired": "BATCH_STATE_EXPIRED",
           "cancelled": "BATCH_STATE_CANCELLED"}


class GeminiBatches:
    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.log = BatchLog()
        self.results_as_file = False
        self._answer = answer  # a GenerateContentRequest → the fake's GenerateContentResponse
        self._models: dict[str, str] = {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1beta/models/{model}:batchGenerateContent", self._create, methods=["POST"]),
            Route("/v1beta/batches/{ident}:cancel", self._cancel, methods=["POST"]),
            Route("/v1beta/batches/{ident}", self._get, methods=["GET"]),
            Route("/download/v1beta/files/{ident}:download", self._download, methods=["GET"]),
        ]

    async def _create(self, request: Request) -> Response:
        self.log.calls.append(("POST", request.url.path))
        refused = self.log.submit_refusal()
        if refused is not None:
            return _error(refused, "UNAVAILABLE" if refused >= 500 else "INVALID_ARGUMENT",
                          f"fake batch refusal {refused}")
        try:
            inline = orjson.loads(await request.body())["batch"]["inputConfig"]["requests"]
            entries = [(str(entry["metadata"]["key"]), entry["request"])
                       for entry in inline["requests"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _error(400, "INVALID_ARGUMENT", "Invalid batch request.")
        if not all(isinstance(body.get("contents"), list) for _, body in entries):
            return _error(400, "INVALID_ARGUMENT", "* contents: required")
        job = self.log.new_job("batches/fake", entries)
        self._models[job.id] = request.path_params["model"]
        return _json(self._operation(job))

    async def _get(self, request: Request) -> Response:
        self.log.calls.append(("GET", request.url.path))
        job = self.log.jobs.get(f"batches/{request.path_params['ident']}")
        if job is None:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        job.poll(self.log.script)
        return _json(self._operation(job))

    async def _cancel(self, request: Request) -> Response:
        self.log.calls.append(("POST", request.url.path))
        job = self.log.jobs.get(f"batches/{request.path_params['ident']}")
        if job is None:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        job.cancelled = True
        return _json({})

    async def _download(self, request: Request) -> Response:
        self.log.calls.append(("GET", request.url.path))
        job = self.log.jobs.get(f"batches/{request.path_params['ident'].removeprefix('out-')}")
        if job is None or job.ended is None:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        lines = [{"key": entry.pop("metadata")["key"], **entry} for entry in self._inlined(job)]
        return Response(b"".join(orjson.dumps(line) + b"\n" for line in lines),
                        media_type="application/jsonl")

    def _operation(self, job: FakeJob) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "@type": BATCH_TYPE, "model": f"models/{self._models[job.id]}",
            "displayName": "", "name": job.id, "state": _STATES[job.ended],
            "createTime": "2026-01-01T00:00:00.000000Z",
            "batchStats": {"requestCount": str(len(job.requests))}}
        operation: dict[str, Any] = {"name": job.id, "metadata": metadata}
        if job.ended is None:
            return operation
        operation["done"] = True
        if job.ended == "failed":
            operation["error"] = {"code": 3, "message": "The batch input was not valid."}
            return operation
        output: dict[str, Any]
        if self.results_as_file:
            output = {"responsesFile": f"files/out-{job.id.removeprefix('batches/')}"}
        else:
            output = {"inlinedResponses": {"inlinedResponses": self._inlined(job)}}
        metadata["output"] = output
        operation["response"] = {"@type": OUTPUT_TYPE, **output}
        return operation

    def _inlined(self, job: FakeJob) -> list[dict[str, Any]]:
        entries = []
        for key, body, outcome in job.answered(self.log.script):
            entry: dict[str, Any]
            if outcome == "answered":
                entry = {"response": self._answer(body)}
            elif outcome == "errored":
                entry = {"error": {"code": 3, "message": "fake: this request was refused"}}
            elif outcome == "cancelled":
                entry = {"error": {"code": 1, "message": "The batch was cancelled."}}
            else:
                continue  # an expired job leaves unrun requests out
            entries.append({**entry, "metadata": {"key": key}})
        return entries


def _json(document: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(document, option=orjson.OPT_INDENT_2), status_code=status,
                    media_type=JSON_TYPE)


def _error(code: int, status: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message, "status": status}}, code)
