"""A live `cometgate serve` whose models reach the three fake upstreams — OpenAI, Anthropic,
Gemini — served by uvicorn on loopback ports in a thread of this process, for the SDK tests of
every entrance. No local model: the config file replaces the models section.

Models, for each kind K: `K-text` on provider K; with `limited=True` also `K-limited` on a
provider `K-limited` that points at the same fake with a key of its own. A scripted 429 rests
the provider's credential for the model that received it, so tests that provoke one use
`K-limited` and leave `K-text` usable.

What an upstream received is read in its own wire format: `sent_instructions_and_question`
(the system text and the first question), `assert_results_paired` (tool results answering the
right calls). `script_streamed_calls` scripts tool calls for a streamed answer.

Usage records are read back with `cometgate usage export` on the gateway's data directory:
the server commits them in batches just after the answer, so a reader polls for a while.
"""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.contract.conftest import KINDS, UPSTREAM_MODEL, Fakes, provider_url, running_fakes
from tests.contract.scenarios import received, script_calls
from tests.contract.upstreams import served
from tests.e2e.conftest import LiveGateway, run_cli, start_gateway
from tests.fakes import gemini_upstream as gemini

RECORD_WAIT_SECONDS = 15.0


class FakesThread:
    """The fakes on their own event loop, so that blocking SDK calls in the test can reach
    them. Scripts are plain list appends, safe from the test thread."""

    def __init__(self, *extra_apps: Any) -> None:
        """`extra_apps`: more fake servers on loopback ports (a search backend, …); their
        base URLs are `extra_urls`, in order."""
        self.fakes: Fakes | None = None
        self._extra_apps = extra_apps
        self.extra_urls: list[str] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with running_fakes() as fakes, served(*self._extra_apps) as urls:
            self.fakes, self.extra_urls = fakes, urls
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Fakes:
        self._thread.start()
        assert self._ready.wait(10), "the fake upstreams did not start"
        assert self.fakes is not None
        return self.fakes

    def release(self, event: asyncio.Event) -> None:
        """Set an event a fake waits on (a held reply), from the test thread."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(event.set)

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def provider_names(*, limited: bool) -> list[str]:
    return [f"{kind}{suffix}" for kind in KINDS
            for suffix in (("", "-limited") if limited else ("",))]


def env_key(provider: str) -> str:
    """The variable holding a provider's key. Each provider has its own, because a cooling
    credential is known by its reference (`env:NAME`): a shared one would cool both."""
    return "CG_E2E_" + provider.upper().replace("-", "_") + "_KEY"


# What a thinking model of each kind declares: agent CLIs ask every model for its thoughts.
THINKING_MODEL = ", thinking: {style: budget, budget_min: 1024, budget_max: 24576}"


def config_text(fakes: Fakes, *, limited: bool = False, thinking: bool = False,
                images: bool = False, sandbox: bool = False) -> str:
    """`thinking`: every model thinks (with budgets), and the OpenAI provider takes
    reasoning_effort, as the reasoning models agent CLIs are pointed at do. `images`: also
    `openai-image`, drawn by the OpenAI fake's Images API ($0.04 a picture). `sandbox`: the
    code-execution sandbox is on (bubblewrap, 3 s a run)."""
    providers = provider_names(limited=limited)
    lines = ["routing: {retries: 0}", "providers:"]
    if sandbox:
        lines.insert(0, "code_execution: {sandbox: bubblewrap, wall_seconds: 3}")
    for name in providers:
        kind = name.removesuffix("-limited")
        reasoning = "supports_reasoning: true, " if thinking and kind == "openai" else ""
        lines.append(f"  {name}: {{kind: {kind}, {reasoning}"
                     f"base_url: '{provider_url(kind, fakes.urls[kind])}'"
                     f", api_key: 'env:{env_key(name)}'}}")
    lines.append("models:")
    for name in providers:
        kind = name.removesuffix("-limited")
        model = name if name != kind else f"{kind}-text"
        lines.append(f"  {model}: {{provider: {name}, upstream_model: {UPSTREAM_MODEL[kind]},"
                     " input_token_limit: 100000, output_token_limit: 8192"
                     f"{THINKING_MODEL if thinking else ''}}}")
    if images:
        lines.append("  openai-image: {task: image, provider: openai, upstream_model: "
                     "gpt-image-up, input_token_limit: 100000, input_mime_types: [text/plain, "
                     "image/png], prices: {input: 5.0, output: 40.0, per_image: 0.04}}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FakesGateway:
    gateway: LiveGateway
    fakes: Fakes

    def clear_scripts(self) -> None:
        for fake in (self.fakes.openai, self.fakes.anthropic, self.fakes.gemini):
            fake.replies.clear()


def serve_before_fakes(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config, name: str,
    *, limited: bool = False, thinking: bool = False, images: bool = False,
    sandbox: bool = False,
) -> Iterator[FakesGateway]:
    """For a module-scoped fixture: the fakes, then the gateway in front of them (see
    `config_text` for `limited` and `thinking`); both are stopped when the generator is
    closed."""
    with FakesThread() as fakes, pytest.MonkeyPatch.context() as patch:
        for provider in provider_names(limited=limited):
            # The server resolves env: references.
            patch.setenv(env_key(provider), f"secret-{provider}")
        root = tmp_path_factory.mktemp(name)
        text = config_text(fakes, limited=limited, thinking=thinking, images=images,
                           sandbox=sandbox)
        for gateway in start_gateway(root, pytestconfig, text):
            yield FakesGateway(gateway, fakes)


def usage_rows(gateway: LiveGateway) -> list[dict[str, str]]:
    """Every usage record committed so far, one dict per CSV row of `cometgate usage export`."""
    done = run_cli("usage", "export", "--data-dir", str(gateway.data_dir))
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def records_of(gateway: LiveGateway, request_id: str) -> list[dict[str, str]]:
    """The records of one request, once at least one is committed (the writer batches them
    just after the answer went out); fails after RECORD_WAIT_SECONDS without any."""
    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    while True:
        found = [row for row in usage_rows(gateway) if row["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            assert found, f"no usage record of request {request_id}"
            return found
        time.sleep(0.2)


def assert_results_paired(kind: str, fakes: Fakes, calls: dict[str, str],
                          results: list[str]) -> None:
    """The upstream of `kind` got the calls (id → name, in order) back, then their results
    (`results`: a value each result holds), paired in its own dialect: by tool_call_id, by
    tool_use_id, or by Gemini's functionResponse name (and id, when the call had one). System
    and developer messages ahead of the turns are passed over."""
    sent = received(kind, fakes)
    if kind == "openai":
        turns = [m for m in sent["messages"] if m["role"] not in ("system", "developer")]
        assistant, *answers = turns[1:]
        assert [c["id"] for c in assistant["tool_calls"]] == list(calls)
        assert [a["tool_call_id"] for a in answers] == list(calls)
        contents = [a["content"] for a in answers]
    elif kind == "anthropic":  # the fake itself refuses results that answer no call
        assistant, answer = sent["messages"][1:]
        assert [b["id"] for b in assistant["content"] if b["type"] == "tool_use"] == list(calls)
        blocks = answer["content"]
        assert [b["tool_use_id"] for b in blocks] == list(calls)
        contents = [str(b["content"]) for b in blocks]
    else:
        model_turn, answer = sent["contents"][1:]
        asked = [p["functionCall"] for p in model_turn["parts"] if "functionCall" in p]
        given = [p["functionResponse"] for p in answer["parts"]]
        assert [c["name"] for c in asked] == [r["name"] for r in given] == list(calls.values())
        assert [c.get("id") for c in asked] == [r.get("id") for r in given]
        contents = [str(r["response"]) for r in given]
    assert all(value in content for value, content in zip(results, contents, strict=True))


def script_streamed_calls(kind: str, fakes: Fakes, calls: list[tuple[str, dict[str, Any]]]
                          ) -> None:
    """`script_calls` for a streamed answer. The Gemini fake streams only text, so its answer
    is one raw SSE event holding every call (Gemini sends a call whole, in one event); the
    fake labels such a body application/json, a header the gateway does not read."""
    if kind != "gemini":
        script_calls(kind, fakes, calls)
        return
    parts = [{"functionCall": {"name": name, "args": args}} for name, args in calls]
    event = {"candidates": [{"content": {"role": "model", "parts": parts},
                             "finishReason": "STOP", "index": 0}],
             "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4,
                               "totalTokenCount": 13},
             "modelVersion": "gemini-up"}
    fakes.gemini.replies.append(
        gemini.Reply(raw_body=b"data: " + orjson.dumps(event) + b"\r\n\r\n"))


def sent_instructions_and_question(kind: str, fakes: Fakes) -> tuple[str, str]:
    """The system instructions and the first user text the upstream of `kind` received last,
    read from its own wire format (a string, or text blocks/parts joined)."""
    sent = received(kind, fakes)
    if kind == "openai":
        system, user = sent["messages"][:2]
        assert system["role"] in ("system", "developer") and user["role"] == "user"
        return _text(system["content"]), _text(user["content"])
    if kind == "anthropic":
        return _text(sent["system"]), _text(sent["messages"][0]["content"])
    return (_text(sent["systemInstruction"]["parts"]),
            _text(sent["contents"][0]["parts"]))


def _text(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(piece.get("text", "")) for piece in content)
