"""Stacked bar charts as inline SVG, drawn on the server: they show without JavaScript, need
no chart library, and a <title> on each bar names its bucket, group and value on hover.

Pure functions: points in, markup out. Every text that came from data is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from markupsafe import Markup, escape

from cometgate.storage.usage_rollups import UsagePoint

WIDTH, HEIGHT = 880, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 36
MAX_SERIES = 6  # the largest groups by total; the rest are summed as "other"
OTHER = "other"
PALETTE = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#9ca3af")
METRICS = ("cost", "tokens", "requests", "errors")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    color: str
    total: Decimal


@dataclass(frozen=True, slots=True)
class Chart:
    svg: Markup
    series: tuple[Series, ...]  # the legend, largest first
    total: Decimal


def value_of(point: UsagePoint, metric: str) -> Decimal:
    if metric == "cost":
        return point.cost_usd
    if metric == "tokens":
        return Decimal(point.prompt_tokens + point.output_tokens)
    if metric == "errors":
        return Decimal(point.errors)
    return Decimal(point.requests)


def bucket_starts(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    starts, moment = [], start
    while moment < end:
        starts.append(moment)
        moment += step
    return starts


def stacked_bars(points: Sequence[UsagePoint], metric: str, buckets: Sequence[datetime],
                 label_format: str) -> Chart:
    names = _series_names(points, metric)
    grid: dict[tuple[datetime, str], Decimal] = {}
    for point in points:
        name = point.group if point.group in names else OTHER
        cell = (point.bucket_start, name)
        grid[cell] = grid.get(cell, Decimal(0)) + value_of(point, metric)
    legend = tuple(
        Series(name, PALETTE[min(i, len(PALETTE) - 1)],
               sum((v for (_, n), v in grid.items() if n == name), Decimal(0)))
        for i, name in enumerate(names))
    stack_top = max((sum((grid.get((b, s.name), Decimal(0)) for s in legend), Decimal(0))
                     for b in buckets), default=Decimal(0))
    body = [*_axes(stack_top, metric), *_bars(grid, legend, buckets, stack_top, metric),
            *_time_labels(buckets, label_format)]
    total = sum((s.total for s in legend), Decimal(0))
    svg = Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'data-metric="{escape(metric)}" data-total="{total}" '
        f'aria-label="{escape(metric)} over time, total {escape(_number(total, metric))}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>')
    return Chart(svg, legend, total)


def _series_names(points: Sequence[UsagePoint], metric: str) -> list[str]:
    totals: dict[str, Decimal] = {}
    for point in points:
        totals[point.group] = totals.get(point.group, Decimal(0)) + value_of(point, metric)
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    if len(ranked) <= MAX_SERIES + 1:
        return ranked
    return [*ranked[:MAX_SERIES], OTHER]


def _axes(top: Decimal, metric: str) -> list[str]:
    parts = []
    plot_height = HEIGHT - TOP - BOTTOM
    for step in range(5):
        y = TOP + plot_height - plot_height * step / 4
        value = top * step / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e5e7eb" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#6b7280">{escape(_number(value, metric))}</text>')
    return parts


def _bars(grid: dict[tuple[datetime, str], Decimal], legend: Sequence[Series],
          buckets: Sequence[datetime], top: Decimal, metric: str) -> list[str]:
    if not buckets or top <= 0:
        return []
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / len(buckets)
    bar = max(slot * 0.8, 1.0)
    parts = []
    for index, bucket in enumerate(buckets):
        base = Decimal(0)
        for series in legend:
            value = grid.get((bucket, series.name), Decimal(0))
            if value <= 0:
                continue
            height = float(value / top) * plot_height
            y = TOP + plot_height - float(base / top) * plot_height - height
            base += value
            label = f"{bucket.isoformat()} · {series.name} · {_number(value, metric)}"
            parts.append(
                f'<rect class="bar" x="{LEFT + index * slot + (slot - bar) / 2:.2f}" '
                f'y="{y:.2f}" width="{bar:.2f}" height="{max(height, 0.5):.2f}" '
                f'fill="{series.color}"><title>{escape(label)}</title></rect>')
    return parts


def _time_labels(buckets: Sequence[datetime], label_format: str) -> list[str]:
    if not buckets:
        return []
    slot = (WIDTH - LEFT - RIGHT) / len(buckets)
    every = max(1, len(buckets) // 8)
    return [f'<text x="{LEFT + i * slot + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle" font-size="11" fill="#6b7280">'
            f'{escape(bucket.strftime(label_format))}</text>'
            for i, bucket in enumerate(buckets) if i % every == 0]


def _number(value: Decimal, metric: str) -> str:
    if metric == "cost":
        return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.1f}"
