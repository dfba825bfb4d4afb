"""From measurements to figures: percentiles, added latency, ratios, and the printed table.

Added latency is system - direct of the same percentile, the direct figures coming from the
direct block run just before that system (so a change of machine load between blocks moves
both). Inter-event gaps are taken between the first `chunks` events of each stream, where
the mock spaces its events `interval_ms` apart; a gap under 1 ms means two events reached the
client together (batched).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.proxy.measure import Measured

BATCHED_GAP_S = 0.001


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass(frozen=True, slots=True)
class Summary:
    system: str
    scenario: str
    ok: int
    failed: int
    p50: float                # ms
    p99: float
    first_p50: float          # ms to the first event (streams)
    first_p99: float
    gap_p50: float            # ms between consecutive events
    gap_p99: float
    batched: int              # gaps under 1 ms
    events_p50: float
    cpu_fixed_ms: float       # CPU ms per request at the fixed rate
    cpu_sat_ms: float         # CPU ms per request at saturation
    sat_rps: float
    sat_p99: float            # ms, at saturation
    sat_errors: int
    mock_share: float
    rss_idle: float
    rss_peak: float
    load: str


def summarise(m: Measured, chunks: int) -> Summary:
    good = [s for s in m.samples if s.status == 200]
    gaps = [b - a for s in good
            for a, b in zip(s.events[:chunks - 1], s.events[1:chunks], strict=False)]
    firsts = [s.events[0] * 1000 for s in good if s.events]
    return Summary(
        m.system, m.scenario, len(good), len(m.samples) - len(good),
        percentile([s.latency * 1000 for s in good], 50),
        percentile([s.latency * 1000 for s in good], 99),
        percentile(firsts, 50), percentile(firsts, 99),
        percentile([g * 1000 for g in gaps], 50), percentile([g * 1000 for g in gaps], 99),
        sum(1 for g in gaps if g < BATCHED_GAP_S),
        percentile([float(len(s.events)) for s in good], 50),
        m.cpu_fixed * 1000 / max(1, len(m.samples)),
        m.sat_cpu * 1000 / max(1, m.sat_requests),
        m.sat_rps, m.sat_p99, m.sat_errors, m.mock_share, m.rss_idle, m.rss_peak, m.load,
    )


def _f(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def _added(is_direct: bool, value: float, base: float) -> str:
    return "" if is_direct else _f(value - base)


HEADER = ("| scenario | system | p50 ms | p99 ms | added p50 | added p99 | 1st event p50 | "
          "added 1st p50 | gap p50/p99 ms | batched | sat req/s | xdirect | xLiteLLM | "
          "CPU xLiteLLM | "
          "CPU ms/req 40/s | CPU ms/req sat | RSS MB peak | mock core share | errors | load |")


def table(rows: list[tuple[Summary, Summary, Summary | None]]) -> str:
    """rows: (system summary, its direct baseline, the LiteLLM summary of that scenario)."""
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    for s, base, litellm in rows:
        is_direct = s.system.startswith("direct")
        ratio_ll = (_f(s.sat_rps / litellm.sat_rps, 1) + "x"
                    if litellm and s.system == "cometgate" and litellm.sat_rps else "")
        cpu_ll = (_f(litellm.cpu_sat_ms / s.cpu_sat_ms, 1) + "x"
                  if litellm and s.system == "cometgate" and s.cpu_sat_ms else "")
        stream = s.events_p50 == s.events_p50 and s.events_p50 > 1
        lines.append(
            f"| {s.scenario} | {s.system} | {_f(s.p50)} | {_f(s.p99)} "
            f"| {_added(is_direct, s.p50, base.p50)} "
            f"| {_added(is_direct, s.p99, base.p99)} | {_f(s.first_p50) if stream else ''} "
            f"| {_added(is_direct, s.first_p50, base.first_p50) if stream else ''} "
            f"| {_f(s.gap_p50) + '/' + _f(s.gap_p99) if stream else ''} "
            f"| {s.batched if stream else ''} | {_f(s.sat_rps, 0)} "
            f"| {'' if is_direct else _f(s.sat_rps / base.sat_rps, 3)} | {ratio_ll} | {cpu_ll} "
            f"| {_f(s.cpu_fixed_ms)} | {_f(s.cpu_sat_ms)} | {_f(s.rss_peak, 0)} "
            f"| {_f(s.mock_share)} | {s.failed}+{s.sat_errors} | {s.load} |")
    return "\n".join(lines)


def verdicts(cg: dict[str, Summary], base: dict[str, Summary],
             ll: dict[str, Summary]) -> list[str]:
    """The brief's targets, each with the measured figure (a report, not an assertion)."""
    out: list[str] = []

    def check(label: str, value: float, limit: float, more_is_better: bool = False) -> None:
        if value != value:
            return
        met = value >= limit if more_is_better else value <= limit
        sign = "≥" if more_is_better else "≤"
        out.append(f"{'met ' if met else 'MISSED'} {label}: {value:.2f} (target {sign} {limit})")

    if "passthrough" in cg:
        check("pass-through added p50 ms", cg["passthrough"].p50 - base["passthrough"].p50, 0.3)
        check("pass-through added p99 ms", cg["passthrough"].p99 - base["passthrough"].p99, 1.5)
    for name, limit in (("passthrough", 100.0), ("translate", 20.0)):
        if name in cg and name in ll and ll[name].sat_rps:
            check(f"{name} saturation xLiteLLM", cg[name].sat_rps / ll[name].sat_rps, limit,
                  more_is_better=True)
            # CPU per request barely moves with other load on the machine; req/s does.
            check(f"{name} CPU per request, LiteLLM / cometgate",
                  ll[name].cpu_sat_ms / cg[name].cpu_sat_ms, limit, more_is_better=True)
    for name in ("stream", "stream-translate"):
        if name in cg:
            check(f"{name} first event added p50 ms",
                  cg[name].first_p50 - base[name].first_p50, 0.5)
    if cg:
        check("RSS peak MB", max(s.rss_peak for s in cg.values()), 80.0)
    return out
