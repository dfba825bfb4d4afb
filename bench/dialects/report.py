"""The printed tables: plain text, aligned, one figure per column."""

from __future__ import annotations

from collections.abc import Sequence

from bench.dialects.end_to_end import Row
from bench.dialects.stages import Stage
from bench.dialects.translation import Cell
from bench.proxy.figures import Summary, percentile


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]], *, text_last: bool = False
            ) -> str:
    """Figures right-aligned; the first column (and the last, if `text_last`) left-aligned;
    a rule under the header."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    left = {0, len(header) - 1} if text_last else {0}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _us(samples: list[int], q: float) -> float:
    return percentile([s / 1000 for s in samples], q)


def cell_figures(cell: Cell) -> dict[str, float]:
    p50, floor50 = _us(cell.path_ns, 50), _us(cell.floor_ns, 50)
    return {"p50_us": p50, "p99_us": _us(cell.path_ns, 99), "floor_p50_us": floor50,
            "floor_p99_us": _us(cell.floor_ns, 99), "ratio_p50": p50 / floor50,
            "samples": float(len(cell.path_ns))}


def translation_table(cells: list[Cell]) -> str:
    by_pair: dict[tuple[str, str], dict[str, Cell]] = {}
    for cell in cells:
        by_pair.setdefault((cell.caller, cell.upstream), {})[cell.kind] = cell
    header = ["caller ← upstream", "p50 µs", "p99 µs", "floor p50", "÷floor",
              "stream p50", "p99 µs", "floor p50", "÷floor", "in the gateway"]
    rows = []
    for (caller, upstream), kinds in by_pair.items():
        plain, streamed = cell_figures(kinds["non-stream"]), cell_figures(kinds["stream"])
        note = ("pass-through (not translated)" if kinds["stream"].passed_through
                else "translated")
        rows.append([f"{caller} ← {upstream}",
                     *_figures(plain), *_figures(streamed), note])
    return aligned(header, rows, text_last=True)


def _figures(f: dict[str, float]) -> list[str]:
    return [f"{f['p50_us']:.0f}", f"{f['p99_us']:.0f}", f"{f['floor_p50_us']:.1f}",
            f"{f['ratio_p50']:.1f}x"]


def stages_table(stages: list[Stage]) -> str:
    rows = [[f"{s.step} ({s.dialect})", f"{s.p50_us:.1f}", f"{s.p99_us:.1f}"] for s in stages]
    return aligned(["non-stream step", "p50 µs", "p99 µs"], rows)


def end_to_end_table(rows: list[Row]) -> str:
    header = ["kind / route", "sat req/s", "÷direct", "CPU µs/req", "p50 ms", "p99 ms",
              "+p50 ms", "+p99 ms", "1st event p50", "+1st ms", "RSS MB", "failed"]
    lines = []
    base: Summary | None = None
    for row in rows:
        s = row.summary
        if row.route == "direct":
            base = s
        assert base is not None
        is_base = row.route == "direct"  # "direct again" shows the drift against it
        stream = row.kind == "stream"
        lines.append([
            f"{row.kind} / {row.route}", f"{s.sat_rps:.0f}",
            "" if is_base else f"{s.sat_rps / base.sat_rps:.3f}",
            f"{s.cpu_sat_ms * 1000:.0f}", f"{s.p50:.2f}", f"{s.p99:.2f}",
            "" if is_base else f"{s.p50 - base.p50:+.2f}",
            "" if is_base else f"{s.p99 - base.p99:+.2f}",
            f"{s.first_p50:.2f}" if stream else "",
            f"{s.first_p50 - base.first_p50:+.2f}" if stream and not is_base else "",
            f"{s.rss_peak:.0f}", f"{s.failed}+{s.sat_errors}",
        ])
    return aligned(header, lines)


def ratio_lines(rows: list[Row]) -> list[str]:
    """The issue's question in one line per kind: gateway ÷ direct."""
    out = []
    for kind in ("non-stream", "stream"):
        found = {r.route: r.summary for r in rows if r.kind == kind}
        base = found.get("direct")
        if base is None:
            continue
        for route in ("openai→openai", "anthropic→openai", "responses→openai",
                      "responses, no store"):
            s = found.get(route)
            if s is None:
                continue
            line = (f"{kind:10} {route:17} ÷ direct: saturation {s.sat_rps / base.sat_rps:.3f}, "
                    f"p50 latency {s.p50 / base.p50:.3f} ({s.p50 - base.p50:+.2f} ms), "
                    f"p99 {s.p99 / base.p99:.3f} ({s.p99 - base.p99:+.2f} ms)")
            if kind == "stream":
                line += f", first event {s.first_p50 - base.first_p50:+.2f} ms"
            out.append(line)
    return out
