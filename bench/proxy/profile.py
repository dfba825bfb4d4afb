"""py-spy sampling of the gateway during saturation, and a short hotspot summary.

Sampled with `--gil` so that only the thread running Python counts (an idle worker thread
blocked in a queue would otherwise show as busy). Needs py-spy in .venv (`pip install py-spy`)
and permission to ptrace the gateway (root, or the same user with ptrace allowed).
"""

from __future__ import annotations

import collections
import dataclasses
import subprocess
from pathlib import Path

from bench.proxy.services import VENV_BIN

PY_SPY = VENV_BIN / "py-spy"
INTERESTING = ("cometgate", "starlette", "httpx", "httpcore", "uvicorn", "anyio", "h11",
               "prometheus", "orjson", "aiosqlite")


def available() -> bool:
    return PY_SPY.exists()


def start(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PY_SPY), "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "--gil",
         "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclasses.dataclass(frozen=True)
class Samples:
    """A py-spy raw profile: total samples, self samples and inclusive samples per frame."""

    total: int
    own: collections.Counter[str]
    inclusive: collections.Counter[str]


def read_samples(raw: Path) -> Samples:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    return Samples(total, own, inclusive)


def hotspots(raw: Path, top: int = 15) -> str:
    """Self time of the hottest frames and inclusive time of our and our libraries' frames."""
    if not raw.exists():
        return f"(no profile at {raw})"
    samples = read_samples(raw)
    total, own, inclusive = samples.total, samples.own, samples.inclusive
    if not total:
        return "(empty profile)"
    lines = [f"  {total} samples; self time:"]
    lines += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("  inclusive (≥ 5%, request path):")
    lines += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common()
              if n / total >= 0.05 and any(k in frame for k in INTERESTING)]
    return "\n".join(lines)
