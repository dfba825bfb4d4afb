"""Runs untrusted Python in a bubblewrap jail: the gateway's code execution for models whose
upstream has none (`code_execution.sandbox: bubblewrap`).

What one run gets, and why it cannot reach past it:
- new user, PID, network, IPC, UTS and cgroup namespaces (`--unshare-all`): no network
  interface but a downed loopback, no other process to see or signal;
- a root of its own: /usr read-only (the interpreter and its standard library; /bin, /lib and
  /lib64 are links into it), a fresh /proc and minimal /dev, and an empty size-bounded tmpfs at
  /tmp as its working directory. Nothing else of the host exists inside: not /etc, not /home,
  not the gateway's data directory, database or keys;
- an empty environment (`--clearenv`), Python in isolated mode (`-I`: no user site, no
  PYTHON* variables), a new session (no terminal to inject into), killed with its parent;
- as an unprivileged user (nobody, through `setpriv`, when the gateway runs as root) under
  rlimits set by `prlimit` before bubblewrap starts, inherited by everything inside: CPU
  seconds, address space, processes of that user, size of any file written (stdout and stderr
  are files, so the output is bounded too), no core dumps;
- a wall-clock deadline, after which the whole process group is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cometgate.canonical import CodeOutcome
from cometgate.settings.sections.code_execution import CodeExecutionSettings

NOBODY = 65534
_TMPFS_BYTES = 16 * 2**20
_PRLIMIT = "/usr/bin/prlimit"
_SETPRIV = "/usr/bin/setpriv"


@dataclass(frozen=True, slots=True)
class RunResult:
    outcome: CodeOutcome
    output: str  # stdout, then stderr; a note is added when a limit ended the run
    seconds: float  # wall time, what a run is billed by


class BubblewrapSandbox:
    def __init__(self, settings: CodeExecutionSettings) -> None:
        self._settings = settings

    @property
    def settings(self) -> CodeExecutionSettings:
        return self._settings

    async def run(self, code: str) -> RunResult:
        limits = self._settings
        if len(code.encode()) > limits.max_code_bytes:
            return RunResult(CodeOutcome.FAILED, f"the code is longer than the sandbox takes "
                             f"({limits.max_code_bytes} bytes)", 0.0)
        with tempfile.TemporaryDirectory(prefix="cometgate-run-") as scratch:
            return await self._run(code, Path(scratch))

    async def _run(self, code: str, scratch: Path) -> RunResult:
        limits = self._settings
        started = time.monotonic()
        with (scratch / "out").open("w+b") as out, (scratch / "err").open("w+b") as err:
            process = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.PIPE, stdout=out, stderr=err,
                start_new_session=True, env={}, cwd="/")
            timed_out = await _finish(process, code.encode(), limits.wall_seconds)
            seconds = time.monotonic() - started
            output = _read(out, limits.max_output_bytes) + _read(err, limits.max_output_bytes)
            full = max(_size(out), _size(err)) >= limits.max_output_bytes
        result = _result(process.returncode, output, timed_out, seconds, limits)
        if full and result.outcome is not CodeOutcome.DEADLINE_EXCEEDED:
            note = f"\n[stopped: the output reached {limits.max_output_bytes} bytes]"
            return RunResult(CodeOutcome.FAILED, result.output + note, seconds)
        return result

    def command(self) -> list[str]:
        limits = self._settings
        memory = limits.memory_mb * 2**20
        return [
            *_unprivileged(),
            # SIGXCPU at the soft limit (a run stopped for its CPU is told apart from a kill),
            # SIGKILL a second later at the hard one.
            _PRLIMIT, f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}", f"--as={memory}",
            f"--nproc={limits.max_processes}", f"--fsize={limits.max_output_bytes}",
            "--core=0", "--",
            limits.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(_TMPFS_BYTES), "--tmpfs", "/tmp", "--chdir", "/tmp",
            "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin",
            "--cap-drop", "ALL",
            limits.python, "-I", "-",
        ]


def _unprivileged() -> list[str]:
    """Nobody, when the gateway runs as root: root is exempt from RLIMIT_NPROC, so a fork bomb
    would otherwise be bounded by time alone. Switched by util-linux's setpriv (uvloop's
    subprocesses take no user or group of their own)."""
    if os.geteuid() != 0:
        return []
    return [_SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


async def _finish(process: asyncio.subprocess.Process, code: bytes, wall: float) -> bool:
    """Feeds the code, waits for the end; True when the deadline killed it."""
    try:
        await asyncio.wait_for(_feed_and_wait(process, code), wall)
        return False
    except TimeoutError:
        _kill_group(process)
        await process.wait()
        return True
    except BaseException:
        _kill_group(process)
        await process.wait()
        raise


async def _feed_and_wait(process: asyncio.subprocess.Process, code: bytes) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(code)
        await process.stdin.drain()
        process.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # it ended before reading all of it; its exit says why
    await process.wait()


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _size(file: BinaryIO) -> int:
    return os.fstat(file.fileno()).st_size


def _read(file: BinaryIO, limit: int) -> str:
    file.seek(0)
    return file.read(limit).decode(errors="replace")


def _result(status: int | None, output: str, timed_out: bool, seconds: float,
            limits: CodeExecutionSettings) -> RunResult:
    if timed_out:
        note = f"\n[stopped: the run passed its {limits.wall_seconds:g} s wall-clock limit]"
        return RunResult(CodeOutcome.DEADLINE_EXCEEDED, output + note, seconds)
    if status == -signal.SIGXCPU or status == 128 + signal.SIGXCPU:
        note = f"\n[stopped: the run used its {limits.cpu_seconds} s of CPU]"
        return RunResult(CodeOutcome.DEADLINE_EXCEEDED, output + note, seconds)
    if status in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return RunResult(CodeOutcome.FAILED, output + "\n[stopped: killed]", seconds)
    if status == 0:
        return RunResult(CodeOutcome.OK, output, seconds)
    return RunResult(CodeOutcome.FAILED, output, seconds)
