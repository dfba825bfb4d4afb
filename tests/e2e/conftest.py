"""A live gateway for the end-to-end tests: `cometgate serve` as a subprocess on a free loopback
port, with the real local model, and a key made beforehand with `cometgate keys create`.

Invariant: every gateway started here is stopped at the end of the session (SIGTERM, a bounded
wait, then SIGKILL of it and of its worker), and its log is attached to any failing test report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

MODEL = "smollm2-135m-instruct"
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 15.0
WORKER_MODULE = "cometgate.worker"
# A context this small ends any generation after a few hundred tokens, which is what lets the
# README's curl commands (which set no maxOutputTokens) run verbatim in bounded time.
SMALL_CONTEXT_CONFIG = f"""
providers:
  local: {{kind: local, model_path: bundled, threads: 2, context_size: 128}}
models:
  {MODEL}:
    provider: local
    input_token_limit: 128
    output_token_limit: 128
"""

_LOGS = pytest.StashKey[list[Path]]()


@dataclass(frozen=True, slots=True)
class LiveGateway:
    """A running `cometgate serve`; `key` was created with the CLI before the server started."""

    base_url: str
    key: str
    data_dir: Path
    pid: int
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


def cometgate_argv(*args: str) -> list[str]:
    """`serve` runs one worker unless the test asks for more: the tests written for one
    process (its pid, its kill -9, its log) stay about one process."""
    if args[:1] == ("serve",) and "--workers" not in args:
        args = (*args, "--workers", "1")
    return [sys.executable, "-m", "cometgate", *args]


def clean_env() -> dict[str, str]:
    """The caller's environment without COMETGATE_* overrides, so only our arguments count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COMETGATE_")}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cometgate_argv(*args), capture_output=True, text=True, timeout=60,
                          env=clean_env(), check=False)


def create_key(data_dir: Path, name: str) -> str:
    """Makes a key with the CLI and checks that stdout holds exactly the key and nothing else."""
    done = run_cli("keys", "create", "--name", name, "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and done.stdout == lines[0] + "\n", repr(done.stdout)
    key = lines[0]
    assert key.strip() == key and len(key) >= 32
    return key


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_pids(parent: int) -> list[int]:
    """Direct children of `parent`, read from /proc (field 4 of /proc/PID/stat is the ppid)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name (field 2) is parenthesised and may contain spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent:
            children.append(int(entry.name))
    return children


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_pids(serve_pid: int) -> list[int]:
    return [pid for pid in child_pids(serve_pid) if f"-m {WORKER_MODULE} " in cmdline(pid)]


def log_tail(path: Path, limit: int = 6000) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return text[-limit:]


def wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"cometgate serve exited with {process.returncode}:\n"
                            f"{log_tail(log_path)}")
            try:
                if http.get(f"{base_url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.2)
    pytest.fail(f"/readyz not 200 within {READY_TIMEOUT_SECONDS}s:\n{log_tail(log_path)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, bounded wait, then SIGKILL — of the worker too, which a killed parent orphans."""
    workers = worker_pids(process.pid)
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    for pid in workers:
        if f"-m {WORKER_MODULE} " in cmdline(pid):
            os.kill(pid, signal.SIGKILL)


def start_gateway(
    root: Path, config: pytest.Config, config_text: str | None = None
) -> Iterator[LiveGateway]:
    data_dir = root / "data"
    key = create_key(data_dir, "e2e")
    log_path = root / "serve.log"
    config.stash.setdefault(_LOGS, []).append(log_path)
    args = ["serve", "--data-dir", str(data_dir), "--port", str(port := free_port()),
            "--host", "127.0.0.1"]
    if config_text is not None:
        (root / "cometgate.yaml").write_text(config_text, encoding="utf-8")
        args += ["--config", str(root / "cometgate.yaml")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(cometgate_argv(*args), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=clean_env())
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, log_path)
        yield LiveGateway(base_url, key, data_dir, process.pid, log_path)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[LiveGateway]:
    """The gateway on its embedded defaults."""
    yield from start_gateway(tmp_path_factory.mktemp("gateway"), pytestconfig)


@pytest.fixture(scope="session")
def small_context_gateway(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[LiveGateway]:
    """A second gateway whose model has a 128-token context (see SMALL_CONTEXT_CONFIG)."""
    yield from start_gateway(tmp_path_factory.mktemp("small"), pytestconfig, SMALL_CONTEXT_CONFIG)


@pytest.fixture(scope="session")
def find_workers() -> Callable[[int], list[int]]:
    """pid of a `cometgate serve` → pids of its local-model worker children."""
    return worker_pids


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `python -m cometgate ARGS…` with COMETGATE_* variables removed."""
    return run_cli


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for path in item.config.stash.get(_LOGS, []):
            report.sections.append((f"gateway log {path.parent.name}", log_tail(path)))
    return report
