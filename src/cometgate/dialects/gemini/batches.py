"""Gemini's Batch API on the wire: the `batchGenerateContent` request, and the batch resource
(a long-running Operation whose `metadata` is a `GenerateContentBatch`).

google-genai reads the batch from `metadata` (`displayName`, `state`, `createTime`,
`updateTime`, `endTime`, `model`, `output`) and maps the REST enum `BATCH_STATE_*` to its
`JOB_STATE_*`; results are `metadata.output.inlinedResponses.inlinedResponses` (or
`responsesFile`), and Google also puts the output in the finished Operation's `response`.
Both spellings of field names are accepted, as protojson accepts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cometgate.dialects.gemini.caller_request import read_json_object
from cometgate.dialects.gemini.protojson import (
    invalid_value_message,
    parse,
    unknown_name_message,
)
from cometgate.dialects.gemini.schema import GENERATE_CONTENT_REQUEST
from cometgate.errors import GatewayError, InvalidRequest

BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = ("type.googleapis.com/google.ai.generativelanguage.v1main."
               "GenerateContentBatchOutput")
FINISHED = ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED",
            "BATCH_STATE_EXPIRED")
REQUESTS_PATH = "batch.input_config.requests.requests"
MAX_DISPLAY_NAME = 512  # what the batches table keeps

# google.rpc.Code numbers of the statuses a request's error can carry (an inlined response's
# `error` is a google.rpc.Status, whose `code` is this number, not an HTTP status).
RPC_CODES = {
    "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}


@dataclass(frozen=True, slots=True)
class BatchItem:
    request: dict[str, Any]  # the GenerateContentRequest, without its own `model`
    metadata: Any  # echoed with its result (google-genai puts the caller's key here)


@dataclass(frozen=True, slots=True)
class BatchInput:
    display_name: str | None
    items: tuple[BatchItem, ...] = ()  # inline requests
    file_name: str | None = None  # files/… holding JSONL requests


@dataclass(frozen=True, slots=True)
class BatchView:
    """What the batch resource shows: the stored batch with its counts and results."""

    id: str
    model: str
    display_name: str | None
    state: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    request_count: int
    succeeded: int
    failed: int
    pending: int
    input_file: str | None
    output_file: str | None
    inlined: Sequence[dict[str, Any]] | None  # each request's result, in input order


def decode_batch_request(body: bytes, max_requests: int) -> BatchInput:
    document = read_json_object(body)
    _only(document, {"batch"}, "")
    batch = document.get("batch")
    if not isinstance(batch, dict):
        raise InvalidRequest("batch is required.", violations={"batch": "batch is required."})
    _only(batch, {"displayName", "display_name", "inputConfig", "input_config", "model",
                  "priority"}, "batch")
    name = _either(batch, "displayName", "display_name")
    if name is not None and not isinstance(name, str):
        raise _invalid("batch.display_name", "TYPE_STRING", name)
    if name is not None and len(name) > MAX_DISPLAY_NAME:
        message = f"batch.display_name must be at most {MAX_DISPLAY_NAME} characters."
        raise InvalidRequest(message, violations={"batch.display_name": message})
    config = _either(batch, "inputConfig", "input_config")
    if not isinstance(config, dict):
        raise _required("batch.input_config")
    _only(config, {"requests", "fileName", "file_name"}, "batch.input_config")
    file_name = _either(config, "fileName", "file_name")
    requests = config.get("requests")
    if (file_name is None) == (requests is None):
        message = "batch.input_config must set exactly one of requests or file_name."
        raise InvalidRequest(message, violations={"batch.input_config": message})
    if file_name is not None:
        if not isinstance(file_name, str) or not file_name.startswith("files/"):
            raise _invalid("batch.input_config.file_name", "TYPE_STRING", file_name)
        return BatchInput(name, file_name=file_name)
    if not isinstance(requests, dict):
        raise _invalid("batch.input_config.requests", "TYPE_MESSAGE", requests)
    _only(requests, {"requests"}, "batch.input_config.requests")
    items = requests.get("requests")
    if not isinstance(items, list) or not items:
        raise _required(REQUESTS_PATH)
    if len(items) > max_requests:
        message = f"A batch may hold at most {max_requests} requests; this one has {len(items)}."
        raise InvalidRequest(message, violations={REQUESTS_PATH: message})
    return BatchInput(name, tuple(inline_item(item, f"{REQUESTS_PATH}[{i}]")
                                  for i, item in enumerate(items)))


def inline_item(item: object, path: str) -> BatchItem:
    """One `InlinedRequest` ({"request", "metadata"}); a JSONL file line ({"key", "request"})
    reads the same way, its key kept as the metadata the result echoes."""
    if not isinstance(item, dict):
        raise _invalid(path, "TYPE_MESSAGE", item)
    _only(item, {"request", "metadata", "key"}, path)
    request = item.get("request")
    if not isinstance(request, dict):
        raise _required(f"{path}.request")
    try:
        parse(GENERATE_CONTENT_REQUEST, request)
    except InvalidRequest as err:
        raise _moved(err, f"{path}.request") from None
    request = {k: v for k, v in request.items() if k != "model"}
    metadata = item.get("metadata")
    if "key" in item:
        metadata = {"key": item["key"]}
    return BatchItem(request, metadata)


def item_error(err: GatewayError) -> dict[str, Any]:
    """A request's failure as the google.rpc.Status Google puts in its inlined response."""
    return {"code": RPC_CODES.get(err.status, 2), "message": err.message}


def encode_batch(view: BatchView) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "@type": BATCH_TYPE,
        "model": f"models/{view.model}",
        "displayName": view.display_name or "",
        "createTime": _timestamp(view.created_at),
        "updateTime": _timestamp(view.updated_at),
        "batchStats": _stats(view),
        "state": view.state,
        "name": f"batches/{view.id}",
    }
    if view.input_file is not None:
        metadata["inputConfig"] = {"fileName": view.input_file}
    if view.ended_at is not None:
        metadata["endTime"] = _timestamp(view.ended_at)
    operation: dict[str, Any] = {"name": f"batches/{view.id}", "metadata": metadata}
    if view.state in FINISHED:
        output = _output(view)
        metadata["output"] = output
        operation["done"] = True
        operation["response"] = {"@type": OUTPUT_TYPE, **output}
    return operation


def encode_batch_list(views: Sequence[BatchView], next_token: str | None) -> dict[str, Any]:
    page: dict[str, Any] = {"operations": [encode_batch(v) for v in views]}
    if next_token is not None:
        page["nextPageToken"] = next_token
    return page


def _output(view: BatchView) -> dict[str, Any]:
    if view.output_file is not None:
        return {"responsesFile": view.output_file}
    return {"inlinedResponses": {"inlinedResponses": list(view.inlined or [])}}


def _stats(view: BatchView) -> dict[str, str]:
    # int64 fields: protojson writes them as strings.
    return {"requestCount": str(view.request_count),
            "successfulRequestCount": str(view.succeeded),
            "failedRequestCount": str(view.failed),
            "pendingRequestCount": str(view.pending)}


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _either(document: dict[str, Any], camel: str, snake: str) -> Any:
    return document.get(camel, document.get(snake))


def _only(document: dict[str, Any], allowed: set[str], path: str) -> None:
    for name in document:
        if name not in allowed:
            message = unknown_name_message(name, path, "Cannot find field.")
            raise InvalidRequest(message, violations={path: message})


def _required(path: str) -> InvalidRequest:
    message = f"{path} is required."
    return InvalidRequest(message, violations={path: message})


def _invalid(path: str, type_name: str, value: object) -> InvalidRequest:
    message = invalid_value_message(path, type_name, value)
    return InvalidRequest(message, violations={path: message})


def _moved(err: InvalidRequest, prefix: str) -> InvalidRequest:
    """A problem found in one request read on its own, placed inside the batch."""
    violations: dict[str, str] = {}
    for path, message in err.violations.items():
        where = f"{prefix}.{path}" if path else prefix
        violations[where] = (message.replace(f"'{path}'", f"'{where}'", 1) if path
                             else message.replace('": ', f"\" at '{where}': ", 1))
    return InvalidRequest("\n".join(violations.values()) or err.message, violations=violations)
