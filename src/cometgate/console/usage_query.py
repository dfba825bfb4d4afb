"""The Usage page's question, read from its query string: period, grouping, metric, filters.

Everything the page shows is in the URL, so a view can be bookmarked and shared, and the CSV
link exports exactly what the chart shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cometgate.console.charts import METRICS
from cometgate.storage.usage_rollups import Bucket, SeriesGroup

PERIODS: Mapping[str, timedelta] = {
    "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
GROUPS: tuple[SeriesGroup, ...] = ("model", "key", "provider")
HOURLY_UP_TO = timedelta(days=2)  # longer periods are drawn per day
_KNOWN = frozenset({"period", "group_by", "metric", "key_id", "model", "provider"})


class BadQuery(ValueError):
    """A query parameter the page cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class UsageQuery:
    period: str
    group_by: SeriesGroup
    metric: str
    key_id: int | None
    model: str | None
    provider: str | None

    @property
    def bucket(self) -> Bucket:
        return "hour" if PERIODS[self.period] <= HOURLY_UP_TO else "day"

    @property
    def step(self) -> timedelta:
        return timedelta(hours=1) if self.bucket == "hour" else timedelta(days=1)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """[start, end): whole buckets, the last one holding `now`."""
        now = now.astimezone(UTC)
        current = now.replace(minute=0, second=0, microsecond=0)
        if self.bucket == "day":
            current = current.replace(hour=0)
        end = current + self.step
        return end - PERIODS[self.period], end

    def filters(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "model": self.model, "provider": self.provider}

    def link(self, **changes: Any) -> str:
        """This view's query string with some values changed."""
        values = {"period": self.period, "group_by": self.group_by, "metric": self.metric,
                  **{k: v for k, v in self.filters().items() if v is not None}, **changes}
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def usage_query(params: Mapping[str, str]) -> UsageQuery:
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise BadQuery(f"Unknown query parameter {unknown[0]!r}.")
    period = params.get("period") or "7d"
    if period not in PERIODS:
        raise BadQuery(f"period must be one of {', '.join(PERIODS)}, not {period!r}.")
    group_by = next((g for g in GROUPS if g == (params.get("group_by") or "model")), None)
    if group_by is None:
        raise BadQuery(f"group_by must be one of {', '.join(GROUPS)}.")
    metric = params.get("metric") or "cost"
    if metric not in METRICS:
        raise BadQuery(f"metric must be one of {', '.join(METRICS)}.")
    return UsageQuery(period, group_by, metric, key_id(params.get("key_id")),
                      params.get("model") or None, params.get("provider") or None)


def key_id(text: str | None) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise BadQuery(f"key_id must be a key's numeric id, not {text!r}.")
    return int(text)
