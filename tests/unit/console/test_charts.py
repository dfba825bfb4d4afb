"""Server-drawn SVG charts: stacking, the largest series first, the rest as "other",
escaping of every text that came from data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cometgate.console.charts import MAX_SERIES, OTHER, bucket_starts, stacked_bars
from cometgate.storage.usage_rollups import UsagePoint

START = datetime(2030, 1, 1, tzinfo=UTC)
HOURS = bucket_starts(START, START + timedelta(hours=4), timedelta(hours=1))


def point(bucket_start: datetime, group: str, *, requests: int = 1,
          errors: int = 0) -> UsagePoint:
    return UsagePoint(bucket_start=bucket_start, group=group, requests=requests, errors=errors,
                      prompt_tokens=10, output_tokens=5, cost_usd=Decimal("0.001"))


def test_buckets_cover_the_window_half_open() -> None:
    assert HOURS == [START + timedelta(hours=h) for h in range(4)]


def test_bars_stack_per_bucket_and_the_total_is_the_sum() -> None:
    points = [point(HOURS[0], "a", requests=3), point(HOURS[0], "b", requests=1),
              point(HOURS[2], "a", requests=2)]
    chart = stacked_bars(points, "requests", HOURS, "%H")
    assert chart.total == 6
    assert [(s.name, s.total) for s in chart.series] == [("a", 5), ("b", 1)]
    bars = re.findall(r'<rect class="bar" x="([\d.]+)" y="([\d.]+)" width="[\d.]+" '
                      r'height="([\d.]+)"', chart.svg)
    assert len(bars) == 3
    # The tallest stack (bucket 0: 3 + 1) reaches the top of the plot.
    (x0, _y0, h0), (x1, y1, h1), (x2, _, h2) = ((float(a), float(b), float(c)) for a, b, c in bars)
    assert x0 == x1 < x2
    assert h0 == 3 * h1 and h2 == 2 * h1
    assert abs(y1 - 12) < 0.01  # the second segment of the first stack is at the top
    assert 'data-total="6"' in chart.svg


def test_tokens_cost_and_errors_are_other_measures_of_the_same_points() -> None:
    points = [point(HOURS[1], "a", errors=1), point(HOURS[1], "b")]
    assert stacked_bars(points, "tokens", HOURS, "%H").total == 30
    assert stacked_bars(points, "cost", HOURS, "%H").total == Decimal("0.002")
    assert stacked_bars(points, "errors", HOURS, "%H").total == 1


def test_beyond_the_largest_series_the_rest_are_summed_as_other() -> None:
    points = [point(HOURS[0], f"g{i}", requests=100 - i) for i in range(MAX_SERIES + 3)]
    chart = stacked_bars(points, "requests", HOURS, "%H")
    names = [s.name for s in chart.series]
    assert names == [*(f"g{i}" for i in range(MAX_SERIES)), OTHER]
    assert chart.series[-1].total == sum(100 - i for i in range(MAX_SERIES, MAX_SERIES + 3))


def test_an_empty_period_draws_axes_and_no_bar() -> None:
    chart = stacked_bars([], "cost", HOURS, "%H")
    assert chart.total == 0 and chart.series == ()
    assert "<rect" not in chart.svg and "<line" in chart.svg


def test_text_from_data_is_escaped() -> None:
    chart = stacked_bars([point(HOURS[0], '<script>alert("x")</script>')], "requests",
                         HOURS, "%H")
    assert "<script>" not in chart.svg
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in chart.svg
