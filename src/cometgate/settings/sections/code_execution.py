"""`code_execution:` — the gateway's own sandbox for code execution on models whose upstream
has none. Off unless the operator turns it on:

    code_execution:
      sandbox: bubblewrap        # none (the default) | bubblewrap
      bwrap: /usr/bin/bwrap      # the bubblewrap binary (Debian's `bubblewrap` package)
      python: /usr/bin/python3   # the interpreter run inside; it must live under /usr
      wall_seconds: 10           # per run, killed after
      cpu_seconds: 5             # per run (RLIMIT_CPU)
      memory_mb: 256             # address space (RLIMIT_AS)
      max_processes: 16          # RLIMIT_NPROC of the unprivileged user the code runs as
      max_output_bytes: 65536    # stdout and stderr each (RLIMIT_FSIZE: past it, the run ends)
      max_code_bytes: 65536
      max_runs: 4                # runs the model may ask for in one answer
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cometgate.settings.fields import ConfigError, Fields

SANDBOXES = ("none", "bubblewrap")


@dataclass(frozen=True, slots=True)
class CodeExecutionSettings:
    sandbox: str = "none"
    bwrap: str = "/usr/bin/bwrap"
    python: str = "/usr/bin/python3"
    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_mb: int = 256
    max_processes: int = 16
    max_output_bytes: int = 65536
    max_code_bytes: int = 65536
    max_runs: int = 4

    @property
    def enabled(self) -> bool:
        return self.sandbox != "none"


_BOUNDS: dict[str, tuple[float, float]] = {
    "wall_seconds": (0.1, 300), "cpu_seconds": (1, 300), "memory_mb": (32, 8192),
    "max_processes": (1, 1024), "max_output_bytes": (1024, 16 * 2**20),
    "max_code_bytes": (64, 2**20), "max_runs": (1, 16),
}


def code_execution(data: Any) -> CodeExecutionSettings:

    f = Fields("code_execution", data or {}, {"sandbox", "bwrap", "python", *_BOUNDS})
    base = CodeExecutionSettings()
    sandbox = f.get("sandbox", str, base.sandbox)
    if sandbox not in SANDBOXES:
        raise ConfigError(f"code_execution.sandbox must be one of: {', '.join(SANDBOXES)}")
    values: dict[str, Any] = {}
    for name, (low, high) in _BOUNDS.items():
        kind = float if name == "wall_seconds" else int
        value = f.get(name, kind, getattr(base, name))
        if not low <= value <= high:
            raise ConfigError(f"code_execution.{name} must be between {low:g} and {high:g}")
        values[name] = value
    settings = CodeExecutionSettings(sandbox, f.get("bwrap", str, base.bwrap),
                                     f.get("python", str, base.python), **values)
    if settings.enabled:
        _check_binaries(settings)
    return settings


def _check_binaries(settings: CodeExecutionSettings) -> None:

    if not Path(settings.bwrap).is_file():
        raise ConfigError(f"code_execution.bwrap: {settings.bwrap} does not exist (install "
                          "Debian's bubblewrap package, or set sandbox: none)")
    if not settings.python.startswith("/usr/") or not Path(settings.python).is_file():
        raise ConfigError(f"code_execution.python: {settings.python} must be an interpreter "
                          "under /usr, the only host directory the sandbox sees")
