"""py-spy sampling of one process, summarised as hotspots with file and line.

Sampled with `--gil`: only the thread holding the GIL counts, so the shares are where Python
CPU time goes (aiosqlite's thread blocked on its queue, or the event loop waiting in its
selector, does not count). Waiting (a commit's fsync, a round trip to PostgreSQL or Redis) is
not CPU and does not show here; the lone-commit figures of writer_rate measure it instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.proxy.profile import read_samples
from bench.proxy.services import VENV_BIN

PY_SPY = VENV_BIN / "py-spy"
OURS = ("cometgate", "sqlalchemy", "aiosqlite", "asyncpg", "redis", "sqlite3", "usage_writer",
        "writer_rate", "decimal", "uuid")


def available() -> bool:
    return PY_SPY.exists()


def start(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PY_SPY), "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "--gil",
         "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hotspots(raw: Path, *, top: int = 12, threshold: float = 0.03) -> str:
    """Self time of the hottest frames (file:line), then inclusive time of the frames of the
    accounting path and its libraries above `threshold`."""
    if not raw.exists():
        return f"    (no profile written at {raw}: py-spy needs ptrace permission)"
    samples = read_samples(raw)
    total, own, inclusive = samples.total, samples.own, samples.inclusive
    if not total:
        return "    (empty profile)"
    lines = [f"    {total} samples; self time:"]
    lines += [f"      {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append(f"    inclusive (≥ {100 * threshold:.0f}%), accounting path and its libraries:")
    lines += [f"      {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common()
              if n / total >= threshold and any(k in frame for k in OURS)][:25]
    return "\n".join(lines)
