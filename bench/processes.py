"""The processes a benchmark run owns: the gateway (`cometgate serve`, which starts its own
llama.cpp worker) and the direct llama.cpp baseline. Linux only: it reads /proc.

Invariants: every child runs in a session of its own, so a Ctrl-C in the terminal reaches only
the benchmark, which then stops its children itself; each child also gets SIGTERM from the
kernel if the benchmark dies without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class BenchSetupError(RuntimeError):
    """A process the benchmark needs did not start or did not become ready in time."""


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: list[str], *, stdin: int | None = None, stdout: int | IO[bytes] | None = None,
          stderr: int | IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr,
                            start_new_session=True, preexec_fn=_die_with_parent)


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; a no-op if it has already exited."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    """VmRSS of one process (its own pages only, children not included)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchSetupError(f"process {pid} reports no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # Field 4 is the parent pid; the command name (field 2) may hold spaces, so split
        # after its closing parenthesis.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


@dataclass(frozen=True, slots=True)
class Worker:
    pid: int
    port: int
    model_name: str


def find_worker(gateway_pid: int) -> Worker:
    """The llama.cpp worker that the gateway supervises, from its command line."""
    for pid in children_of(gateway_pid):
        argv = cmdline(pid)
        if "cometgate.worker" in argv:
            return Worker(pid, int(_option(argv, "--port")), _option(argv, "--model-name"))
    raise BenchSetupError(f"no worker process under gateway pid {gateway_pid}")


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    base_url: str
    key: str
    worker: Worker

    @property
    def pid(self) -> int:
        return self.process.pid


def create_key(cometgate: Path, data_dir: Path) -> str:
    done = subprocess.run(
        [str(cometgate), "keys", "create", "--name", "bench", "--data-dir", str(data_dir)],
        capture_output=True, check=True, timeout=60,
    )
    return done.stdout.decode().strip()


def start_gateway(cometgate: Path, data_dir: Path, log: IO[bytes], timeout: float) -> Gateway:
    """`cometgate serve` on a free loopback port, returned once /readyz says the local model
    is loaded. The caller stops it with `stop(gateway.process)`."""
    key = create_key(cometgate, data_dir)
    port = free_port()
    argv = [str(cometgate), "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1"]
    process = spawn(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, f"{base_url}/readyz", timeout)
        worker = find_worker(process.pid)
    except BaseException:
        stop(process)
        raise
    return Gateway(process, base_url, key, worker)


def _wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchSetupError(f"the gateway exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.2)
    raise BenchSetupError(f"the gateway was not ready within {timeout:.0f}s")


class DirectLlama:
    """The baseline process (bench/direct_llama.py), one JSON line per job."""

    def __init__(self, python: Path, script: Path, model_path: Path, *, threads: int,
                 context_size: int, log: IO[bytes], timeout: float) -> None:
        argv = [str(python), str(script), "--model-path", str(model_path),
                "--threads", str(threads), "--context-size", str(context_size)]
        self.process = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self.load_seconds = float(self._read(timeout)["load_seconds"])

    @property
    def pid(self) -> int:
        return self.process.pid

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(job) + b"\n")
        self.process.stdin.flush()
        return self._read(timeout)

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready = _readable_within(self.process.stdout, timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            raise BenchSetupError("the direct llama.cpp process did not answer in time "
                                  f"(exit status {self.process.poll()})")
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()  # end of input: the process frees the model and exits
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            stop(self.process)


def _readable_within(stream: IO[bytes], timeout: float) -> bool:
    import select

    readable, _, _ = select.select([stream], [], [], timeout)
    return bool(readable)
