"""LiteLLM proxy in its own virtualenv (bench/.venv-litellm), configured against the same mock.

How LiteLLM serves a Gemini-native caller (read from its docs and its proxy source):
- `/gemini/{endpoint}` is its Google AI Studio pass-through: the caller's request goes to
  `GEMINI_API_BASE` + endpoint with `GEMINI_API_KEY`, no translation — the counterpart of
  cometgate's `kind: gemini` pass-through.
- `/v1beta/models/{model}:generateContent` and `:streamGenerateContent` (its google-genai /
  gemini-cli endpoints) route `{model}` through its router to any provider in `model_list`,
  translating Gemini → OpenAI for an `openai/` model — the counterpart of cometgate's
  translation path, so both take the same Gemini request.
Both authenticate the LiteLLM key sent in `x-goog-api-key`. One worker, logging at ERROR, no
database (a master key only), telemetry off.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.proxy.services import (
    MOCK_MODEL,
    MOCK_OPENAI_MODEL,
    ROOT,
    Service,
    free_port,
    spawn,
    wait_ready,
)

VENV = ROOT / "bench" / ".venv-litellm"
MASTER_KEY = "sk-bench-litellm"

CONFIG = """\
model_list:
  - model_name: gem
    litellm_params: {{model: gemini/{gem}, api_base: "http://127.0.0.1:{port}", api_key: mock}}
  - model_name: oai
    litellm_params: {{model: openai/{oai}, api_base: "http://127.0.0.1:{port}/v1",
                      api_key: mock}}
general_settings:
  master_key: {key}
litellm_settings:
  telemetry: false
  set_verbose: false
"""


def ensure_installed() -> None:
    """Creates the virtualenv and installs `litellm[proxy]` if the CLI is missing."""
    if (VENV / "bin" / "litellm").exists():
        return
    print(f"installing litellm[proxy] into {VENV} (once)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True,
                   timeout=1800)


def version() -> str:
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c",
         "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True, check=True, timeout=60)
    return done.stdout.decode().strip()


def start_litellm(workdir: Path, mock: Service) -> Service:
    config = workdir / "litellm.yaml"
    config.write_text(CONFIG.format(port=mock.port, gem=MOCK_MODEL, oai=MOCK_OPENAI_MODEL,
                                    key=MASTER_KEY))
    port = free_port()
    env = {
        "GEMINI_API_BASE": f"http://127.0.0.1:{mock.port}",
        "GEMINI_API_KEY": "mock",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    service = spawn("litellm", [str(VENV / "bin" / "litellm"), "--config", str(config),
                                "--host", "127.0.0.1", "--port", str(port),
                                "--num_workers", "1"],
                    port=port, log=workdir / "litellm.log", env=env, cwd=workdir)
    wait_ready(service, "/health/liveliness", timeout=180)
    return service
