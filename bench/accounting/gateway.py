"""cometgate in front of the mock upstream, with accounting on or off, on one backend.

Both modes run the same binary and configuration but for `server.accounting`; off, the gateway
still authenticates the key and applies its access rules (expiry, IPs, model allow-list), and
skips the limiter and the usage record. The model is priced, so that a request's worst-case
cost is reserved and its real cost settled and recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.accounting.backends import BENCH_MODEL, Backend
from bench.proxy import services
from bench.proxy.services import MOCK_MODEL

CONFIG = """\
server: {{access_log: false, accounting: {accounting}}}
providers:
  mockgem: {{kind: gemini, base_url: "http://127.0.0.1:{port}", api_key: env:MOCK_KEY}}
models:
  {model}:
    provider: mockgem
    upstream_model: {upstream}
    input_token_limit: 1048576
    output_token_limit: 65536
    prices: {{input: 0.30, output: 2.50, cached_input: 0.075}}
"""

# Variables that would point the gateway at another database or Redis than the backend's.
_STORAGE_VARIABLES = ("COMETGATE_DATABASE_URL", "COMETGATE_REDIS_URL", "COMETGATE_DATA_DIR")


MODES = ("off", "on")


def start(workdir: Path, mock: services.Service, backend: Backend,
          mode: str) -> services.Service:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode}")
    accounting = mode == "on"
    config = workdir / f"cometgate-{backend.name}-{mode}.yaml"
    config.write_text(CONFIG.format(accounting=str(accounting).lower(), port=mock.port,
                                    model=BENCH_MODEL, upstream=MOCK_MODEL))
    port = services.free_port()
    env = {"MOCK_KEY": "mock-upstream-key", **backend.gateway_env()}
    for name in _STORAGE_VARIABLES:
        if name in os.environ and name not in env:
            env[name] = ""  # an empty value counts as unset for cometgate's settings
    service = services.spawn(
        f"cometgate-{backend.name}-{mode}",
        [str(services.VENV_BIN / "cometgate"), "serve", "--config", str(config),
         "--data-dir", str(workdir / "gateway-data"), "--port", str(port), "--workers", "1"],
        port=port, log=workdir / f"cometgate-{backend.name}-{mode}.log", env=env,
        cwd=services.ROOT)
    services.wait_ready(service, "/healthz", timeout=60)
    return service
