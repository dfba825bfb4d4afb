"""The processes a run starts: the mock upstream, cometgate, LiteLLM, the floor apps. Each runs
in its own session on 127.0.0.1 and is stopped (its whole process group) when the run ends,
however it ends: normal exit, exception, SIGINT/SIGTERM/SIGHUP."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
MOCK_MODEL = "gemini-2.5-flash"
MOCK_OPENAI_MODEL = "gpt-4o-mini"


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


_running: list[Service] = []
# Services that answer like the mock and follow its timing (the uvicorn-only floor).
_timing_mirrors: list[Service] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(name: str, command: list[str], *, port: int, log: Path,
          env: dict[str, str] | None = None, cwd: Path | None = None) -> Service:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
    service = Service(name, port, process, log)
    _running.append(service)
    return service


def stop(service: Service) -> None:
    if service in _running:
        _running.remove(service)
    if service in _timing_mirrors:
        _timing_mirrors.remove(service)
    if service.process.poll() is not None:
        return
    try:
        os.killpg(service.pid, signal.SIGTERM)
        service.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(service.pid, signal.SIGKILL)
        service.process.wait(timeout=5)
    except ProcessLookupError:
        pass


def stop_all() -> None:
    for service in list(reversed(_running)):
        stop(service)


def install_cleanup() -> None:
    atexit.register(stop_all)

    def on_signal(signum: int, _frame: object) -> None:
        stop_all()
        sys.exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def wait_ready(service: Service, path: str, *, timeout: float, method: str = "GET") -> None:
    """Polls `path` until it answers 200; fails early if the process died."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{service.port}{path}"
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited ({service.process.returncode}); "
                               f"see {service.log}")
        try:
            data = b"{}" if method == "POST" else None
            with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method),
                                        timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} not ready after {timeout:.0f}s; see {service.log}")


def start_mock(workdir: Path) -> Service:
    port = free_port()
    service = spawn("mock", [str(VENV_BIN / "python"), "-m", "bench.proxy.mock_upstream",
                             "--port", str(port)],
                    port=port, log=workdir / "mock.log", cwd=ROOT)
    wait_ready(service, "/_mock/config", timeout=20, method="POST")
    return service


def set_mock_timing(mock: Service, *, latency_ms: float, chunks: int, interval_ms: float) -> None:
    """Sets the mock's timing, and that of every running service that mirrors it."""
    body = (f'{{"latency_ms": {latency_ms}, "chunks": {chunks}, '
            f'"interval_ms": {interval_ms}}}').encode()
    for service in (mock, *_timing_mirrors):
        request = urllib.request.Request(f"http://127.0.0.1:{service.port}/_mock/config",
                                         data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()


COMETGATE_CONFIG = """\
server: {{access_log: false}}
providers:
  mockgem: {{kind: gemini, base_url: "http://127.0.0.1:{port}", api_key: env:MOCK_KEY}}
  mockoai: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: env:MOCK_KEY}}
models:
  gem: {{provider: mockgem, upstream_model: {gem}, input_token_limit: 1048576,
         output_token_limit: 65536}}
  oai: {{provider: mockoai, upstream_model: {oai}, input_token_limit: 128000,
         output_token_limit: 16384}}
"""


def start_cometgate(workdir: Path, mock: Service, *, workers: int = 1) -> tuple[Service, str]:
    """cometgate (`--workers N`, one by default: the baseline is one process) on a free port
    with its own data dir; returns the service and a fresh key."""
    config = workdir / "cometgate.yaml"
    config.write_text(COMETGATE_CONFIG.format(port=mock.port, gem=MOCK_MODEL,
                                              oai=MOCK_OPENAI_MODEL))
    data = workdir / "cometgate-data"
    env = {"MOCK_KEY": "mock-upstream-key"}
    key = subprocess.run(
        [str(VENV_BIN / "cometgate"), "keys", "create", "--name", "bench", "--config",
         str(config), "--data-dir", str(data)],
        check=True, capture_output=True, env={**os.environ, **env}, timeout=60,
    ).stdout.decode().strip()
    port = free_port()
    service = spawn("cometgate", [str(VENV_BIN / "cometgate"), "serve", "--config", str(config),
                                  "--data-dir", str(data), "--port", str(port),
                                  "--workers", str(workers)],
                    port=port, log=workdir / "cometgate.log", env=env)
    wait_ready(service, "/healthz", timeout=60)
    return service, key


def start_floor(workdir: Path, mock: Service, mode: str) -> Service:
    """A floor app (`floor_app.py`): `floor` forwards to the mock; `uvicorn-only` answers like
    the mock itself and follows the mock's timing from then until it is stopped."""
    port = free_port()
    command = [str(VENV_BIN / "python"), "-m", "bench.proxy.floor_app", "--mode", mode,
               "--port", str(port), "--upstream-port", str(mock.port), "--model", MOCK_MODEL,
               "--key", "mock-upstream-key"]
    service = spawn(mode, command, port=port, log=workdir / f"{mode}.log", cwd=ROOT)
    wait_ready(service, "/healthz", timeout=60)
    if mode == "uvicorn-only":
        _timing_mirrors.append(service)
    return service
