"""GET /v1beta/balance and /v1/balance: where the calling key stands.

Authenticated exactly like model calls (x-goog-api-key, or Authorization: Bearer), except that
`?key=` is refused: this route is new, so no client depends on putting the key in a URL, where
proxies and browser histories keep it.

The body: the key's limits; budget (spent from the usage log; remaining = budget - spent);
usage today and this budget period (UTC calendar windows); and `rate`, what the limiter says
(requests and tokens remaining this minute, reservations in flight), from the `state` callable
the application supplies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.admin_requests import dump_json, invalid
from cometgate.api.auth import KeyAuthenticator
from cometgate.limits.policy import LimitState, day_window, period_window
from cometgate.storage.keys import KeyRecord
from cometgate.storage.money import money_text
from cometgate.storage.usage import UsageQueries, UsageTotals

LimiterState = Callable[[KeyRecord], Awaitable[Mapping[str, Any]]]
JSON_TYPE = "application/json; charset=UTF-8"


def balance_routes(
    auth: KeyAuthenticator, state: LimiterState, usage: UsageQueries
) -> list[BaseRoute]:
    async def balance(request: Request) -> Response:
        if "key" in request.query_params:
            raise invalid("key", "The balance endpoint does not take the API key in the URL; "
                                 "send it in the x-goog-api-key header.")
        record = await auth.authenticate(request)
        document = await balance_document(record, usage, datetime.now(UTC))
        document["rate"] = dict(await state(record))
        return Response(dump_json(document), media_type=JSON_TYPE)

    return [Route(f"{version}/balance", balance, methods=["GET"]) for version in ("/v1beta", "/v1")]


async def balance_document(
    record: KeyRecord, usage: UsageQueries, now: datetime
) -> dict[str, Any]:
    """Everything but `rate`: the key, its limits, its budget and its usage."""
    total = await usage.key_totals(record.id)
    today = await usage.key_totals(record.id, since=day_window(now)[0])
    period: UsageTotals | None = None
    period_start: datetime | None = None
    if record.budget_period is not None:
        period_start = period_window("day" if record.budget_period == "day" else "month", now)[0]
        period = await usage.key_totals(record.id, since=period_start)
    return {
        "key": {"id": record.id, "name": record.name, "prefix": record.prefix,
                "status": record.status(now), "expires_at": record.expires_at},
        "limits": {"rpm": record.rpm, "tpm": record.tpm, "rpd": record.rpd,
                   "max_concurrent": record.max_concurrent},
        "budget": {
            "total_usd": _money(record.budget_total_usd),
            "spent_total_usd": _money(total.cost_usd),
            "remaining_total_usd": _remaining(record.budget_total_usd, total.cost_usd),
            "period": record.budget_period,
            "period_start": period_start,
            "period_usd": _money(record.budget_period_usd),
            "spent_period_usd": None if period is None else _money(period.cost_usd),
            "remaining_period_usd": None if period is None
            else _remaining(record.budget_period_usd, period.cost_usd),
        },
        "usage": {"today": today.counts(), "period": None if period is None else period.counts(),
                  "total": total.counts()},
    }


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else money_text(amount)


def _remaining(budget: Decimal | None, spent: Decimal) -> str | None:
    return None if budget is None else money_text(max(Decimal(0), budget - spent))


def balance_state(state: LimitState) -> dict[str, object]:
    """The limiter's view of a key, as the balance endpoint reports it under "rate"."""
    return {
        "requests_remaining_this_minute": state.remaining_requests_this_minute,
        "requests_remaining_today": state.remaining_requests_today,
        "tokens_remaining_this_minute": state.remaining_tokens_this_minute,
        "in_flight": state.in_flight,
        "reserved_usd": money_text(state.reserved),
        "minute_resets_at": state.minute_resets_at.isoformat(),
        "day_resets_at": state.day_resets_at.isoformat(),
    }
