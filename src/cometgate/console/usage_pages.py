"""The Usage page (a stacked bar chart and a table per group) and its CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from starlette.requests import Request
from starlette.responses import Response

from cometgate.console.charts import METRICS, bucket_starts, stacked_bars
from cometgate.console.rendering import render
from cometgate.console.session import Session
from cometgate.console.usage_query import GROUPS, PERIODS, BadQuery, UsageQuery, usage_query
from cometgate.storage.money import money_text
from cometgate.storage.usage_rollups import UsagePoint, UsageRollups

CSV_FIELDS = ("bucket_start", "group", "requests", "errors", "prompt_tokens", "output_tokens",
              "cost_usd")


@dataclass(frozen=True, slots=True)
class GroupTotals:
    group: str
    requests: int
    errors: int
    prompt_tokens: int
    output_tokens: int
    cost_usd: Decimal


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class UsagePages:
    usage: UsageRollups
    clock: Callable[[], datetime] = utc_now  # where "the last 24 h" ends (benchmarks move it)

    async def page(self, request: Request, session: Session) -> Response:
        try:
            query = usage_query(request.query_params)
        except BadQuery as exc:
            return render("missing.html", session, status=400, what=str(exc))
        start, end = query.window(self.clock())
        points = await self._points(query, start, end)
        label = "%H:%M" if query.bucket == "hour" else "%m-%d"
        chart = stacked_bars(points, query.metric, bucket_starts(start, end, query.step), label)
        return render("usage.html", session, query=query, chart=chart, start=start, end=end,
                      totals=group_totals(points), periods=PERIODS, groups=GROUPS,
                      metrics=METRICS)

    async def export(self, request: Request, session: Session) -> Response:
        try:
            query = usage_query(request.query_params)
        except BadQuery as exc:
            return render("missing.html", session, status=400, what=str(exc))
        start, end = query.window(self.clock())
        points = await self._points(query, start, end)
        name = f"usage-{query.period}-by-{query.group_by}.csv"
        return Response(points_csv(points), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    async def _points(self, query: UsageQuery, start: datetime, end: datetime
                      ) -> Sequence[UsagePoint]:
        return await self.usage.series(start=start, end=end, bucket=query.bucket,
                                       group_by=query.group_by, **query.filters())


def group_totals(points: Sequence[UsagePoint]) -> list[GroupTotals]:
    """One row per group over the whole period, costliest first."""
    rows: dict[str, GroupTotals] = {}
    for p in points:
        was = rows.get(p.group, GroupTotals(p.group, 0, 0, 0, 0, Decimal(0)))
        rows[p.group] = GroupTotals(
            p.group, was.requests + p.requests, was.errors + p.errors,
            was.prompt_tokens + p.prompt_tokens, was.output_tokens + p.output_tokens,
            was.cost_usd + p.cost_usd)
    return sorted(rows.values(), key=lambda row: (-row.cost_usd, -row.requests, row.group))



def points_csv(points: Sequence[UsagePoint]) -> str:
    """RFC 4180 (CRLF line ends), one row per bucket and group, money as exact decimal text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for p in points:
        writer.writerow([p.bucket_start.astimezone(UTC).isoformat(), p.group, p.requests,
                         p.errors, p.prompt_tokens, p.output_tokens, money_text(p.cost_usd)])
    return out.getvalue()
