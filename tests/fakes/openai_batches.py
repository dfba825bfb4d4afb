"""The OpenAI fake's Batch API, in OpenAI's wire format: `POST /v1/files` (multipart,
`purpose=batch`, a JSONL file of `{"custom_id", "method": "POST", "url":
"/v1/chat/completions", "body"}` lines) → a file object; `POST /v1/batches`
(`input_file_id`, `endpoint`, `completion_window` 24h) → a batch (`validating`); `GET
/v1/batches/{id}` (in_progress → completed | failed | expired | cancelled, with
`output_file_id` / `error_file_id`); `POST /v1/batches/{id}/cancel` (cancelling); `GET
/v1/files/{id}/content` (the output and error JSONL). Every call must carry a Bearer key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.batch_jobs import BatchLog, FakeJob

ENDPOINT = "/v1/chat/completions"
_ENDED = {"succeeded": "completed", "failed": "failed", "expired": "expired",
          "cancelled": "cancelled"}


class OpenAIBatches:
    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.log = BatchLog()
        self._answer = answer  # a Chat Completions request → the fake's chat.completion
        self.files: dict[str, bytes] = {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/files", self._upload, methods=["POST"]),
            Route("/v1/files/{ident}/content", self._content, methods=["GET"]),
            Route("/v1/batches", self._create, methods=["POST"]),
            Route("/v1/batches/{ident}", self._get, methods=["GET"]),
            Route("/v1/batches/{ident}/cancel", self._cancel, methods=["POST"]),
        ]

    async def _upload(self, request: Request) -> Response:
        self.log.calls.append(("POST", request.url.path))
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "invalid_request_error", "You didn't provide an API key.")
        async with request.form() as form:
            upload = form.get("file")
            if form.get("purpose") != "batch" or not isinstance(upload, UploadFile):
                return _error(400, "invalid_request_error", "purpose and file are required")
            ident = f"file-fake{len(self.files) + 1}"
            self.files[ident] = await upload.read()
            name = upload.filename
        return _json({"id": ident, "object": "file", "bytes": len(self.files[ident]),
                      "created_at": 1_700_000_000, "filename": name, "purpose": "batch"})

    async def _create(self, request: Request) -> Response:
        self.log.calls.append(("POST", request.url.path))
        refused = self.log.submit_refusal()
        if refused is not None:
            kind = "server_error" if refused >= 500 else "invalid_request_error"
            return _error(refused, kind, f"fake batch refusal {refused}")
        body = orjson.loads(await request.body())
        data = self.files.get(str(body.get("input_file_id")))
        if data is None or body.get("endpoint") != ENDPOINT or (
                body.get("completion_window") != "24h"):
            return _error(400, "invalid_request_error", "Invalid batch request.")
        entries = []
        for number, line in enumerate(data.splitlines(), 1):
            entry = orjson.loads(line)
            if entry.get("method") != "POST" or entry.get("url") != ENDPOINT or not isinstance(
                    (entry.get("body") or {}).get("messages"), list):
                return _error(400, "invalid_request_error", f"line {number} is not valid")
            entries.append((str(entry["custom_id"]), entry["body"]))
        return _json(self._batch(self.log.new_job("batch_fake", entries)))

    async def _get(self, request: Request) -> Response:
        self.log.calls.append(("GET", request.url.path))
        job = self.log.jobs.get(request.path_params["ident"])
        if job is None:
            return _error(404, "invalid_request_error", "No batch found.")
        job.poll(self.log.script)
        return _json(self._batch(job))

    async def _cancel(self, request: Request) -> Response:
        self.log.calls.append(("POST", request.url.path))
        job = self.log.jobs.get(request.path_params["ident"])
        if job is None:
            return _error(404, "invalid_request_error", "No batch found.")
        job.cancelled = True
        return _json(self._batch(job))

    async def _content(self, request: Request) -> Response:
        self.log.calls.append(("GET", request.url.path))
        ident = request.path_params["ident"]
        job = self.log.jobs.get(ident.removesuffix("-out").removesuffix("-err"))
        if job is None or job.ended is None:
            return _error(404, "invalid_request_error", "No such file.")
        errors = ident.endswith("-err")
        lines = [self._line(n, custom_id, body, outcome) for n, (custom_id, body, outcome)
                 in enumerate(job.answered(self.log.script))
                 if (outcome != "answered") == errors]
        return Response(b"".join(orjson.dumps(line) + b"\n" for line in lines),
                        media_type="application/octet-stream")

    def _line(self, number: int, custom_id: str, body: dict[str, Any], outcome: str
              ) -> dict[str, Any]:
        line: dict[str, Any] = {"id": f"batch_req_{number}", "custom_id": custom_id,
                                "response": None, "error": None}
        if outcome == "answered":
            line["response"] = {"status_code": 200, "request_id": f"req_{number}",
                                "body": self._answer(body)}
        elif outcome == "errored":
            line["response"] = {"status_code": 400, "request_id": f"req_{number}", "body": {
                "error": {"message": "fake: this request was refused",
                          "type": "invalid_request_error", "param": None, "code": None}}}
        else:
            code = "batch_cancelled" if outcome == "cancelled" else "batch_expired"
            line["error"] = {"code": code, "message": f"This request was not run ({code})."}
        return line

    def _batch(self, job: FakeJob) -> dict[str, Any]:
        outcomes = [o for _, _, o in job.answered(self.log.script)] if job.ended else []
        status = (_ENDED[job.ended] if job.ended else "cancelling" if job.cancelled
                  else "validating" if job.polls == 0 else "in_progress")
        batch: dict[str, Any] = {
            "id": job.id, "object": "batch", "endpoint": ENDPOINT, "status": status,
            "input_file_id": "file-fake", "completion_window": "24h",
            "created_at": 1_700_000_000, "errors": None,
            "output_file_id": None, "error_file_id": None,
            "request_counts": {"total": len(job.requests),
                               "completed": outcomes.count("answered"),
                               "failed": len(outcomes) - outcomes.count("answered")}}
        if job.ended == "failed":
            batch["errors"] = {"object": "list", "data": [
                {"code": "invalid_request", "message": "The batch input was not valid.",
                 "param": None, "line": 1}]}
        elif job.ended is not None:
            if "answered" in outcomes:
                batch["output_file_id"] = f"{job.id}-out"
            if any(o != "answered" for o in outcomes):
                batch["error_file_id"] = f"{job.id}-err"
        return batch


def _json(document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


def _error(status: int, kind: str, message: str) -> Response:
    return Response(orjson.dumps({"error": {"message": message, "type": kind, "param": None,
                                            "code": None}}),
                    status_code=status, media_type="application/json")
