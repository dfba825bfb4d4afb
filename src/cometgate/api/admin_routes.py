"""The operator's REST API under /admin/: keys, usage, and the OpenAPI document describing both.

Access: `Authorization: Bearer <COMETGATE_ADMIN_KEY>`, compared in constant time. Without an
admin key in the settings, every /admin path answers 404 exactly like a path that does not
exist (for every method), so a gateway without one shows no admin surface at all. A user API
key is refused with 403 and says so; anything else is 401.

Plaintext keys appear only in the body of the create and rotate responses, never in a log line.
Errors use the gateway's envelope: {"error": {"code", "message", "status", "details"}}.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.admin_conversations import ConversationAdmin
from cometgate.api.admin_requests import (
    dump_json,
    invalid,
    key_arguments,
    parse_time,
)
from cometgate.api.admin_schema import ADMIN_PATHS, admin_openapi
from cometgate.api.body import read_body
from cometgate.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from cometgate.settings import Secret, Settings
from cometgate.storage.conversations import ConversationStore
from cometgate.storage.key_records import MAX_KEY_ID
from cometgate.storage.keys import AmbiguousKeyError, KeyNotFoundError, KeyRepository
from cometgate.storage.usage import GROUPS, GroupBy, UsageQueries, UsageTotals

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"
# Admin bodies are small: a metadata object of at most 16 KiB and two allow-lists.
MAX_ADMIN_BODY_BYTES = 1024 * 1024
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_USAGE_PARAMETERS = frozenset({"group_by", "since", "until", "key_id", "model", "format"})

Handler = Callable[[Request], Awaitable[Response]]


def admin_routes(
    settings: Settings, keys: KeyRepository, usage: UsageQueries, models: Sequence[str],
    conversations: ConversationStore | None = None,
) -> list[BaseRoute]:
    """Every /admin route. `models` (configured model ids) is what allow-lists are checked
    against; `keys` may be the repository the model routes authenticate with."""
    checked_keys = KeyRepository(keys.database, known_models=models)
    api = AdminApi(settings.admin_key, checked_keys, usage, ConversationAdmin(conversations))
    return api.routes()


@dataclass(frozen=True, slots=True)
class AdminApi:
    admin_key: Secret | None
    keys: KeyRepository
    usage: UsageQueries
    conversations: ConversationAdmin = ConversationAdmin(None)

    def routes(self) -> list[BaseRoute]:
        handlers: Mapping[str, Mapping[str, Handler]] = {
            "/admin/keys": {"GET": self.list_keys, "POST": self.create_key},
            "/admin/keys/{ident}": {
                "GET": self.show_key, "PATCH": self.update_key, "DELETE": self.delete_key,
            },
            "/admin/keys/{ident}/revoke": {"POST": self.revoke_key},
            "/admin/keys/{ident}/rotate": {"POST": self.rotate_key},
            "/admin/usage": {"GET": self.usage_totals},
            "/admin/conversations": {"GET": self.conversations.list_turns,
                                     "DELETE": self.conversations.purge},
            "/admin/conversations/{turn_id}": {"DELETE": self.conversations.purge_one},
            "/admin/openapi.json": {"GET": self.openapi},
        }
        assert set(handlers) == set(ADMIN_PATHS), "the OpenAPI document must name every route"
        return [
            Route(path, self._guarded(by_method), methods=_ALL_METHODS)
            for path, by_method in handlers.items()
        ]

    def _guarded(self, by_method: Mapping[str, Handler]) -> Handler:
        async def endpoint(request: Request) -> Response:
            await self.admit(request)
            handler = by_method.get(request.method)
            if handler is None:
                allowed = ", ".join(by_method)
                raise MethodNotAllowed(
                    f"Method {request.method} is not allowed here; use {allowed}.",
                    tuple(by_method))
            try:
                return await handler(request)
            except KeyNotFoundError as exc:
                raise NotFound(str(exc)) from None
            except (AmbiguousKeyError, ValueError) as exc:
                raise InvalidRequest(str(exc)) from None

        return endpoint

    async def admit(self, request: Request) -> None:
        """Lets the admin key through; anything else is refused as admin routes refuse it."""
        if self.admin_key is None:
            raise NotFound(f"Method not found: {request.method} {request.url.path}")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            if request.headers.get("x-goog-api-key") or "key" in request.query_params:
                raise PermissionDenied(
                    "Admin routes do not accept API keys; send the admin key as "
                    "'Authorization: Bearer <admin key>'."
                )
            raise Unauthenticated("Admin routes need 'Authorization: Bearer <admin key>'.")
        if same_secret(token, self.admin_key.value):
            return
        if await self.keys.authenticate(token) is not None:
            raise PermissionDenied(
                "This is an API key for model calls; admin routes need the admin key."
            )
        raise Unauthenticated("The admin key is not valid.")

    async def list_keys(self, request: Request) -> Response:
        now = datetime.now(UTC)
        records = await self.keys.list()
        return _json({"keys": [record.as_document(now) for record in records]})

    async def create_key(self, request: Request) -> Response:
        arguments = key_arguments(await _body(request), partial=False)
        name = arguments.pop("name")
        record, key = await self.keys.create(name, **arguments)
        return _json({**record.as_document(datetime.now(UTC)), "key": key}, status=201)

    async def show_key(self, request: Request) -> Response:
        record = await self.keys.show(request.path_params["ident"])
        return _json(record.as_document(datetime.now(UTC)))

    async def update_key(self, request: Request) -> Response:
        changes = key_arguments(await _body(request), partial=True)
        record = await self.keys.update(request.path_params["ident"], **changes)
        return _json(record.as_document(datetime.now(UTC)))

    async def delete_key(self, request: Request) -> Response:
        record = await self.keys.delete(request.path_params["ident"])
        return _json({"deleted": record.as_document(datetime.now(UTC))})

    async def revoke_key(self, request: Request) -> Response:
        record = await self.keys.revoke(request.path_params["ident"])
        return _json(record.as_document(datetime.now(UTC)))

    async def rotate_key(self, request: Request) -> Response:
        record, key = await self.keys.rotate(request.path_params["ident"])
        return _json({**record.as_document(datetime.now(UTC)), "key": key})

    async def usage_totals(self, request: Request) -> Response:
        query = usage_query(request.query_params)
        output = query.pop("format")
        group_by = query.pop("group_by")
        if output == "csv":
            text = await self.usage.csv(group_by, **query)
            return Response(text, media_type=CSV_TYPE)
        totals = await self.usage.totals(group_by or "key", **query)
        return _json({"group_by": group_by or "key", "totals": [totals_json(t) for t in totals]})

    async def openapi(self, request: Request) -> Response:
        return _json(admin_openapi())


def usage_query(params: Mapping[str, str]) -> dict[str, Any]:
    """group_by (None when absent), since, until, key_id, model and format from a query string.

    With format=csv and no group_by the export is one row per request; otherwise totals.
    """
    unknown = sorted(set(params) - _USAGE_PARAMETERS)
    if unknown:
        raise invalid(unknown[0], f"Unknown query parameter {unknown[0]!r}")
    group_by = params.get("group_by")
    if group_by is not None and group_by not in GROUPS:
        raise invalid("group_by", f"group_by must be one of {', '.join(GROUPS)}")
    output = params.get("format", "json")
    if output not in ("json", "csv"):
        raise invalid("format", "format must be json or csv")
    key_id = params.get("key_id")
    if key_id is not None and not _is_key_id(key_id):
        raise invalid("key_id", "key_id must be a key's numeric id")
    return {
        "group_by": _group(group_by),
        "format": output,
        "since": _optional_time(params, "since"),
        "until": _optional_time(params, "until"),
        "key_id": None if key_id is None else int(key_id),
        "model": params.get("model"),
    }


def totals_json(totals: UsageTotals) -> dict[str, Any]:
    group = {"key_id": totals.key_id, "model": totals.model, "day": totals.day}
    return {**{name: value for name, value in group.items() if value is not None},
            **totals.counts()}


def _group(value: str | None) -> GroupBy | None:
    return next((group for group in GROUPS if group == value), None)


def _is_key_id(text: str) -> bool:
    # Length first: int() of thousands of digits is refused (and slow) before any compare.
    return (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_KEY_ID))
            and int(text) <= MAX_KEY_ID)


def _optional_time(params: Mapping[str, str], name: str) -> datetime | None:
    text = params.get(name)
    return None if text is None else parse_time(name, text)


def same_secret(presented: str, expected: str) -> bool:
    # Digests first, so the comparison takes the same time whatever the presented length.
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


async def _body(request: Request) -> bytes:
    return await read_body(request, MAX_ADMIN_BODY_BYTES)


def _json(document: Any, *, status: int = 200) -> Response:
    return Response(dump_json(document), status_code=status, media_type=JSON_TYPE)
