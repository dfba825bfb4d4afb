"""The Keys pages: list and search, create (the key shown once), edit every policy field,
rotate, revoke, delete. All key logic is KeyRepository's, the admin API's repository; the
form is read through the admin API's own argument parser (key_form)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cometgate.console.key_form import arguments_from_form, form_values
from cometgate.console.rendering import render
from cometgate.console.session import Session
from cometgate.errors import InvalidRequest
from cometgate.storage.key_records import KeyNotFoundError, KeyRecord
from cometgate.storage.keys import TRANSLATION_POLICIES, KeyRepository
from cometgate.storage.usage_rollups import UsageRollups

MAX_SEARCH_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Spend:
    """A key's use over a UTC calendar period, from the daily rollups."""

    requests: int
    tokens: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class KeyPages:
    keys: KeyRepository  # checked against the configured models, as the admin API's is
    usage: UsageRollups

    async def index(self, request: Request, session: Session) -> Response:
        query = request.query_params.get("q", "")[:MAX_SEARCH_LENGTH].strip()
        records = [r for r in await self.keys.list() if _matches(r, query)]
        return render("keys.html", session, keys=records, q=query, now=datetime.now(UTC),
                      form=form_values(None), error=None, **_choices())

    async def create(self, request: Request, session: Session) -> Response:
        form = await _form(request)
        try:
            arguments = arguments_from_form(form, partial=False)
            name = arguments.pop("name")
            record, key = await self.keys.create(name, **arguments)
        except (InvalidRequest, ValueError) as exc:
            records = await self.keys.list()
            return render("keys.html", session, status=400, keys=records, q="",
                          now=datetime.now(UTC), form=form, error=_message(exc), **_choices())
        return render("key_secret.html", session, status=201, record=record, key=key,
                      action="created")

    async def show(self, request: Request, session: Session) -> Response:
        record = await self._find(request)
        if record is None:
            return _missing(session)
        today, month = await self._spend(record.id)
        return render("key.html", session, record=record, form=form_values(record),
                      now=datetime.now(UTC), error=None, saved="saved" in request.query_params,
                      today=today, month=month, **_choices())

    async def update(self, request: Request, session: Session) -> Response:
        record = await self._find(request)
        if record is None:
            return _missing(session)
        form = await _form(request)
        try:
            await self.keys.update(str(record.id), **arguments_from_form(form, partial=True))
        except (InvalidRequest, ValueError) as exc:
            today, month = await self._spend(record.id)
            return render("key.html", session, status=400, record=record, form=form,
                          now=datetime.now(UTC), error=_message(exc), saved=False,
                          today=today, month=month, **_choices())
        return RedirectResponse(f"/console/keys/{record.id}?saved=1", status_code=303)

    async def rotate(self, request: Request, session: Session) -> Response:
        record = await self._find(request)
        if record is None:
            return _missing(session)
        try:
            rotated, key = await self.keys.rotate(str(record.id))
        except ValueError as exc:
            today, month = await self._spend(record.id)
            return render("key.html", session, status=400, record=record,
                          form=form_values(record), now=datetime.now(UTC),
                          error=_message(exc), saved=False, today=today, month=month,
                          **_choices())
        return render("key_secret.html", session, record=rotated, key=key, action="rotated")

    async def revoke(self, request: Request, session: Session) -> Response:
        record = await self._find(request)
        if record is None:
            return _missing(session)
        await self.keys.revoke(str(record.id))
        return RedirectResponse(f"/console/keys/{record.id}", status_code=303)

    async def delete(self, request: Request, session: Session) -> Response:
        record = await self._find(request)
        if record is None:
            return _missing(session)
        await self.keys.delete(str(record.id))
        return RedirectResponse("/console/keys", status_code=303)

    async def _spend(self, key_id: int) -> tuple[Spend, Spend]:
        """Today's and this month's use, as the limiter's day and month periods count (UTC)."""
        now = datetime.now(UTC)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        month = day.replace(day=1)
        points = await self.usage.series(start=month, end=day + timedelta(days=1),
                                         bucket="day", group_by="key", key_id=key_id)

        def total(since: datetime) -> Spend:
            chosen = [p for p in points if p.bucket_start >= since]
            return Spend(sum(p.requests for p in chosen),
                         sum(p.prompt_tokens + p.output_tokens for p in chosen),
                         sum((p.cost_usd for p in chosen), Decimal(0)))

        return total(day), total(month)

    async def _find(self, request: Request) -> KeyRecord | None:
        ident = request.path_params["key_id"]
        try:
            return await self.keys.find(str(ident))
        except KeyNotFoundError:
            return None


def _matches(record: KeyRecord, query: str) -> bool:
    if not query:
        return True
    needle = query.casefold()
    return any(needle in text.casefold()
               for text in (record.name, record.prefix, record.owner or "", str(record.id)))


def _choices() -> dict[str, Any]:
    return {"translations": TRANSLATION_POLICIES, "periods": ("day", "month")}


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, InvalidRequest) else str(exc)


def _missing(session: Session) -> Response:
    return render("missing.html", session, status=404, what="No such key.")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}
