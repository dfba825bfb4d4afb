"""A Gemini batch's requests as an upstream's own batch API takes them, and its answers as
the Gemini caller reads them.

Out: a Gemini upstream gets each GenerateContentRequest as the caller wrote it (as a live call
is passed through); a translating upstream gets what its outbound codec writes from the
canonical request, checked as a live attempt checks it. What the upstream's batch cannot do —
a built-in tool the gateway runs itself on live calls (URL context, Google Maps, its own web
search or sandbox) — is refused when the batch is created, never dropped.

Back: each outcome becomes the caller's `{"response": GenerateContentResponse}` or
`{"error": google.rpc.Status}`, with the usage to record (priced at the batch tier).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from cometgate.canonical import GenerateRequest, Usage
from cometgate.dialects.batch_jobs import CANCELLED, EXPIRED, SUCCEEDED, Outcome
from cometgate.dialects.gemini.batches import item_error
from cometgate.dialects.gemini.caller_request import decode_generate_request
from cometgate.dialects.gemini.caller_response import encode_response
from cometgate.dialects.gemini.passthrough import renamed
from cometgate.dialects.gemini.paths import gemini_path
from cometgate.dialects.gemini.upstream_errors import usage_from_response
from cometgate.errors import FailureClass, GatewayError, InvalidRequest, UpstreamError
from cometgate.metering import Served
from cometgate.pipeline import Call, Gateway, dropped_report
from cometgate.providers.base import RunsCode, SearchesWeb
from cometgate.providers.batch_apis import UpstreamBatchApi
from cometgate.settings import BATCH_TIER
from cometgate.storage.batch_upstream_jobs import SettledItem
from cometgate.storage.batches import ITEM_CANCELLED, ITEM_EXPIRED, ITEM_FAILED, ITEM_SUCCEEDED

REQUESTS_PATH = "batch.input_config.requests.requests"


@dataclass(frozen=True, slots=True)
class UpstreamRoute:
    """Where a model's batches go when its first candidate's provider says `batch:
    upstream`."""

    provider: str
    upstream_model: str
    api: UpstreamBatchApi
    live_provider: object  # the same provider's live side: what it can run itself


@dataclass(frozen=True, slots=True)
class Entry:
    custom_id: str  # the request's position in the caller's batch
    body: dict[str, Any]  # in the upstream's dialect
    headers: tuple[tuple[str, str], ...] = ()
    # What the translation could not carry, named as the caller named it (for the usage
    # record, as a live call's x-cometgate-dropped); None: nothing.
    dropped: str | None = None


def upstream_entry(gateway: Gateway, route: UpstreamRoute, model: str, position: int,
                   request: dict[str, Any], translation: str | None) -> Entry:
    """The request at `position` for the upstream's batch; refused as the caller hears it."""
    _refuse_gateway_resources(route, request, position)
    if route.api.codec is None:
        return Entry(str(position), request)
    canonical, dropped = _canonical(gateway, model, request, translation)
    _refuse_gateway_tools(route, canonical, position)
    encoded = route.api.codec.encode_request(canonical, route.upstream_model, stream=False)
    strict = (translation or gateway.translation(model)) == "strict"
    if encoded.dropped and strict:
        message = (f"{_path(position)}: this model's upstream cannot carry: "
                   + "; ".join(encoded.dropped))
        raise InvalidRequest(message, violations={_path(position): message})
    report = dropped_report(_decoded(model, request), dropped, encoded.dropped)
    paths = report.caller + tuple(gemini_path(p) for p in report.canonical)
    return Entry(str(position), encoded.body, encoded.headers,
                 ",".join(dict.fromkeys(paths)) or None)


def settled(gateway: Gateway, route: UpstreamRoute, model: str, position: int,
            request: dict[str, Any], outcome: Outcome, translation: str | None
            ) -> tuple[SettledItem, Served | None]:
    """A request's outcome as stored for the caller, and what its usage record says (None:
    it never ran, so it has none)."""
    if outcome.kind == CANCELLED:
        return SettledItem(position, ITEM_CANCELLED, None), None
    if outcome.kind == EXPIRED:
        return SettledItem(position, ITEM_EXPIRED, None), None
    try:
        if outcome.kind != SUCCEEDED or outcome.body is None:
            raise outcome.error or UpstreamError("The request failed upstream.",
                                                 failure_class=FailureClass.UNKNOWN)
        document, usage = _answer(gateway, route, model, request, outcome.body, translation)
    except GatewayError as exc:
        failure = getattr(exc, "failure_class", None)
        return (SettledItem(position, ITEM_FAILED, {"error": item_error(exc)}),
                Served(exc.http_status, None, route.provider, route.upstream_model,
                       failure.value if failure is not None else None))
    batch_usage = replace(usage or Usage(), service_tier=BATCH_TIER)
    return (SettledItem(position, ITEM_SUCCEEDED, {"response": document}),
            Served(200, batch_usage, route.provider, route.upstream_model))


def _answer(gateway: Gateway, route: UpstreamRoute, model: str, request: dict[str, Any],
            body: bytes, translation: str | None) -> tuple[dict[str, Any], Usage | None]:
    if route.api.codec is None:
        document: dict[str, Any] = orjson.loads(renamed(body, model))
        return document, usage_from_response(body)
    canonical, _ = _canonical(gateway, model, request, translation)
    response = route.api.codec.decode_response(body, canonical, model)
    translated: dict[str, Any] = orjson.loads(encode_response(response))
    return translated, response.usage


def _canonical(gateway: Gateway, model: str, request: dict[str, Any],
               translation: str | None) -> tuple[GenerateRequest, tuple[str, ...]]:
    body = orjson.dumps(request)
    call = Call(model, dialect="gemini", decode=lambda: decode_generate_request(body, model),
                translation=translation)
    return gateway.batch_request(call)


def _decoded(model: str, request: dict[str, Any]) -> GenerateRequest:
    """The request as the caller sent it, before the model's defaults."""
    return decode_generate_request(orjson.dumps(request), model)


def _refuse_gateway_tools(route: UpstreamRoute, request: GenerateRequest,
                          position: int) -> None:
    provider = route.live_provider
    tools = [name for name, asked, upstream_runs in (
        ("urlContext", request.url_context, False),
        ("googleMaps", request.google_maps, False),
        ("googleSearch", request.web_search is not None,
         isinstance(provider, SearchesWeb) and provider.searches_web()),
        ("codeExecution", request.code_execution,
         isinstance(provider, RunsCode) and provider.runs_code()),
    ) if asked and not upstream_runs]
    if tools:
        message = (f"{_path(position)}: the {', '.join(tools)} tool cannot run in this "
                   f"model's upstream batch (provider {route.provider} takes batches to its "
                   "own batch API); send this request live, or in a batch of a model whose "
                   "provider has batch: gateway.")
        raise InvalidRequest(message, violations={_path(position): message})


def _refuse_gateway_resources(route: UpstreamRoute, request: dict[str, Any],
                              position: int) -> None:
    """A cached content or a file of the gateway's lives here, not upstream: a live call has
    it linked or inlined on the way, a request in an upstream's batch would not find it."""
    named = [name for name, found in (
        ("cachedContent", "cachedContent" in request or "cached_content" in request),
        ("fileData", _names_file(request.get("contents"))),
    ) if found]
    if named:
        message = (f"{_path(position)}: {' and '.join(named)} cannot be used in this model's "
                   f"upstream batch (provider {route.provider} takes batches to its own batch "
                   "API); send this request live, or in a batch of a model whose provider has "
                   "batch: gateway.")
        raise InvalidRequest(message, violations={_path(position): message})


def _names_file(contents: object) -> bool:
    if not isinstance(contents, list):
        return False
    return any(isinstance(part, dict) and ("fileData" in part or "file_data" in part)
               for content in contents if isinstance(content, dict)
               for part in content.get("parts") or [])


def _path(position: int) -> str:
    return f"{REQUESTS_PATH}[{position}].request"

