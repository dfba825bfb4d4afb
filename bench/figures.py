"""Medians, ratios and the plain-text tables the benchmark prints."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def rate(tokens: int | None, seconds: float | None) -> float | None:
    if tokens is None or not seconds:
        return None
    return tokens / seconds


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def milliseconds(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 1000:.{digits}f}"


@dataclass(frozen=True, slots=True)
class Target:
    """A goal on one figure: met when value >= bound (at_least) or value <= bound."""

    bound: float
    at_least: bool

    def verdict(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        met = value >= self.bound if self.at_least else value <= self.bound
        return "met" if met else "MISSED"

    def describe(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.bound:g}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned others, columns sized to their content."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = (str(cell).rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
