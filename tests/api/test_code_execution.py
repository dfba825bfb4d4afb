"""Gemini's codeExecution tool: natively on an Anthropic upstream (its code execution server
tool, beta header and all), as executableCode / codeExecutionResult parts in order with the
text, whole and streamed; emulated through the gateway's bubblewrap sandbox on an
OpenAI-compatible upstream when the operator enables it; refused, naming the models that have
it, when neither can run it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.api.upstream_fakes import Gateway, running
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import gemini_upstream as gemini
from tests.fakes import openai_upstream as openai

SANDBOX = {"code_execution": {"sandbox": "bubblewrap", "wall_seconds": 3, "cpu_seconds": 2,
                              "max_runs": 2}}


def _body(text: str, *, tools: list[dict[str, Any]] | None = None) -> bytes:
    return orjson.dumps({"contents": [{"role": "user", "parts": [{"text": text}]}],
                         "tools": tools if tools is not None else [{"codeExecution": {}}]})


async def _post(gateway: Gateway, model: str, body: bytes, *, stream: bool = False) -> Any:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return await gateway.http.post(f"/v1beta/models/{model}:{method}", content=body,
                                   headers={"x-goog-api-key": gateway.key})


def _events(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in text.split("\r\n\r\n")
            if line.startswith("data: ")]


def _streamed_parts(text: str) -> list[dict[str, Any]]:
    return [part for event in _events(text) for c in event.get("candidates", [])
            for part in c.get("content", {}).get("parts", [])]


async def test_anthropic_runs_the_code_natively(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        gateway.fakes.anthropic.replies.append(anthropic.Reply(
            text="The sum is 45.", code="print(sum(range(10)))", code_stdout="45\n"))
        response = await _post(gateway, "anthropic-alias", _body("Sum 0..9 with code."))
        assert response.status_code == 200, response.text
        parts = response.json()["candidates"][0]["content"]["parts"]
        assert parts == [
            {"executableCode": {"language": "PYTHON", "code": "print(sum(range(10)))"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "45\n"}},
            {"text": "The sum is 45."},
        ]
        sent = gateway.fakes.anthropic.requests[0]
        assert {"type": "code_execution_20250522", "name": "code_execution"} in sent["tools"]
        beta = gateway.fakes.anthropic.headers[0]["anthropic-beta"]
        assert "code-execution-2025-05-22" in beta.split(",")


async def test_anthropic_code_execution_streams_in_order(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        gateway.fakes.anthropic.replies.append(anthropic.Reply(
            text="It failed.", code="1/0", code_stderr="ZeroDivisionError\n",
            code_return=1))
        response = await _post(gateway, "anthropic-alias", _body("Divide."), stream=True)
        assert response.status_code == 200, response.text
        parts = _streamed_parts(response.text)
        assert parts[0] == {"executableCode": {"language": "PYTHON", "code": "1/0"}}
        assert parts[1] == {"codeExecutionResult": {"outcome": "OUTCOME_FAILED",
                                                    "output": "ZeroDivisionError\n"}}
        assert "".join(p.get("text", "") for p in parts[2:]) == "It failed."
        assert _events(response.text)[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_an_anthropic_run_out_of_time_is_deadline_exceeded(tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        gateway.fakes.anthropic.replies.append(anthropic.Reply(
            text="Too slow.", code="while True: pass", code_error="execution_time_exceeded"))
        response = await _post(gateway, "anthropic-alias", _body("Loop."))
        parts = response.json()["candidates"][0]["content"]["parts"]
        assert parts[1] == {"codeExecutionResult": {"outcome": "OUTCOME_DEADLINE_EXCEEDED"}}


async def test_without_a_sandbox_other_models_refuse_naming_those_that_run_code(
        tmp_path: Path) -> None:
    async with running(tmp_path) as gateway:
        response = await _post(gateway, "openai-alias", _body("Sum with code."))
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        assert error["message"].startswith(
            "tools.codeExecution is not supported by models/openai-alias: it runs no code, "
            "natively or in this gateway's sandbox. Models that have it here: ")
        able = error["message"].split("Models that have it here: ")[1].rstrip(".").split(", ")
        assert set(able) == {"anthropic-alias", "gemini-alias", "claude-failover",
                             "gemini-image"}
        assert gateway.fakes.openai.requests == []


async def test_the_sandbox_runs_the_models_code(tmp_path: Path) -> None:
    async with running(tmp_path, SANDBOX) as gateway:
        gateway.fakes.openai.replies += [
            openai.Reply(text="Let me compute.", tool_calls=[
                {"name": "run_python", "arguments": {"code": "print(6 * 7)"}}],
                finish_reason="tool_calls"),
            openai.Reply(text="It is 42.")]
        response = await _post(gateway, "openai-alias", _body("What is 6 times 7?"))
        assert response.status_code == 200, response.text
        parts = response.json()["candidates"][0]["content"]["parts"]
        assert parts == [
            {"text": "Let me compute."},
            {"executableCode": {"language": "PYTHON", "code": "print(6 * 7)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "42\n"}},
            {"text": "It is 42."},
        ]
        first, second = gateway.fakes.openai.requests
        assert [t["function"]["name"] for t in first["tools"]] == ["run_python"]
        result = second["messages"][-1]
        assert result["role"] == "tool" and "42" in result["content"]
        (record,) = await gateway.records()
        assert record.sandbox_seconds > 0
        assert record.prompt_tokens == 14 and record.output_tokens == 10  # both rounds


async def test_the_sandbox_answer_streams(tmp_path: Path) -> None:
    async with running(tmp_path, SANDBOX) as gateway:
        gateway.fakes.openai.replies += [
            openai.Reply(text=None, tool_calls=[
                {"name": "run_python", "arguments": {"code": "print('hi')"}}],
                finish_reason="tool_calls"),
            openai.Reply(text="Printed hi.")]
        response = await _post(gateway, "openai-alias", _body("Print hi."), stream=True)
        assert response.status_code == 200, response.text
        assert _streamed_parts(response.text) == [
            {"executableCode": {"language": "PYTHON", "code": "print('hi')"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "hi\n"}},
            {"text": "Printed hi."},
        ]
        (record,) = await gateway.records()
        assert record.stream and record.sandbox_seconds > 0


ESCAPES = [
    ("network", "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\n"
                "print('CONNECTED')", "OUTCOME_FAILED", "Network is unreachable"),
    ("host file", "print(open('/etc/passwd').read())", "OUTCOME_FAILED",
     "No such file or directory: '/etc/passwd'"),
    ("fork bomb", "import os\nwhile True:\n    os.fork()", "OUTCOME_FAILED",
     "Resource temporarily unavailable"),
    ("endless loop", "while True:\n    pass", "OUTCOME_DEADLINE_EXCEEDED", "[stopped:"),
    ("memory bomb", "x = bytearray(4 * 1024 ** 3)\nprint('got it')", "OUTCOME_FAILED",
     "MemoryError"),
]


@pytest.mark.parametrize(("name", "code", "outcome", "said"), ESCAPES,
                         ids=[e[0] for e in ESCAPES])
async def test_escapes_fail_safely(tmp_path: Path, name: str, code: str, outcome: str,
                                   said: str) -> None:
    async with running(tmp_path, SANDBOX) as gateway:
        gateway.fakes.openai.replies += [
            openai.Reply(text=None, tool_calls=[
                {"name": "run_python", "arguments": {"code": code}}],
                finish_reason="tool_calls"),
            openai.Reply(text="Done.")]
        response = await _post(gateway, "openai-alias", _body(f"Try the {name}."))
        assert response.status_code == 200, response.text
        result = response.json()["candidates"][0]["content"]["parts"][1]["codeExecutionResult"]
        assert result["outcome"] == outcome
        assert said in result.get("output", "")
        assert "CONNECTED" not in result.get("output", "")
        assert "got it" not in result.get("output", "")


def _run_then_answer(code: str) -> list[openai.Reply]:
    return [openai.Reply(text=None, tool_calls=[{"name": "run_python", "arguments": {
        "code": code}}], finish_reason="tool_calls"), openai.Reply(text="Done.")]


async def _key(gateway: Gateway, name: str, **policy: Any) -> str:
    async with await open_database(gateway.settings.database_url) as database:
        _, key = await KeyRepository(database).create(name, **policy)
    return key


async def test_sandbox_seconds_are_priced(tmp_path: Path) -> None:
    async with running(tmp_path, SANDBOX) as gateway:
        gateway.fakes.openai.replies += _run_then_answer("print(1)")
        response = await _post(gateway, "openai-sandboxed", _body("Run it."))
        assert response.status_code == 200, response.text
        (record,) = await gateway.records()
        tokens = (14 * Decimal(1) + 10 * Decimal(2)) / 1_000_000
        sandbox = Decimal(repr(record.sandbox_seconds)) * Decimal("0.001")
        assert record.sandbox_seconds > 0
        assert record.cost_usd == (tokens + sandbox).quantize(Decimal("1e-9"))


async def test_a_budget_reserves_every_run_at_its_wall_limit(tmp_path: Path) -> None:
    async with running(tmp_path, SANDBOX) as gateway:
        # 2 runs of at most 3 s at $0.001 a second: $0.006 reserved, beyond this budget.
        poor = await _key(gateway, "poor", budget_total_usd=Decimal("0.005"),
                          allowed_passthrough=("codeExecution",))
        response = await gateway.http.post(
            "/v1beta/models/openai-sandboxed:generateContent", content=_body("Run it."),
            headers={"x-goog-api-key": poor})
        assert response.status_code == 429, response.text
        assert gateway.fakes.openai.requests == []
        rich = await _key(gateway, "rich", budget_total_usd=Decimal("0.05"),
                          allowed_passthrough=("codeExecution",))
        gateway.fakes.openai.replies += _run_then_answer("print(2)")
        response = await gateway.http.post(
            "/v1beta/models/openai-sandboxed:generateContent", content=_body("Run it."),
            headers={"x-goog-api-key": rich})
        assert response.status_code == 200, response.text


async def test_runs_beyond_the_limit_are_not_made(tmp_path: Path) -> None:
    async with running(tmp_path, SANDBOX) as gateway:  # max_runs: 2
        call = openai.Reply(text=None, tool_calls=[{"name": "run_python", "arguments": {
            "code": "print(3)"}}], finish_reason="tool_calls")
        gateway.fakes.openai.replies += [call, call, call]
        response = await _post(gateway, "openai-alias", _body("Loop forever."))
        assert response.status_code == 200, response.text
        parts = response.json()["candidates"][0]["content"]["parts"]
        assert [next(iter(p)) for p in parts] == ["executableCode", "codeExecutionResult"] * 2
        assert len(gateway.fakes.openai.requests) == 3


async def test_gemini_models_get_the_callers_bytes(tmp_path: Path) -> None:
    google = {"candidates": [{"content": {"role": "model", "parts": [
        {"executableCode": {"language": "PYTHON", "code": "print(2 + 2)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "4\n"}},
        {"text": "Four."}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9,
                          "totalTokenCount": 14}, "modelVersion": "gemini-up"}
    body = _body("Add two and two with code.")
    async with running(tmp_path) as gateway:
        gateway.fakes.gemini.replies.append(gemini.Reply(raw_body=orjson.dumps(google)))
        response = await _post(gateway, "gemini-alias", body)
        assert response.status_code == 200, response.text
        assert response.json()["candidates"][0]["content"] == google["candidates"][0]["content"]
        assert gateway.fakes.gemini.requests[0].body == body


async def test_a_chat_goes_on_after_code_ran(tmp_path: Path) -> None:
    """google-genai's chats send the past turn's code parts back: Anthropic gets that turn's
    text, and the caller hears what was left out."""
    body = orjson.dumps({"contents": [
        {"role": "user", "parts": [{"text": "Sum 0..9 with code."}]},
        {"role": "model", "parts": [
            {"executableCode": {"language": "PYTHON", "code": "print(sum(range(10)))"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "45\n"}},
            {"text": "The sum is 45."}]},
        {"role": "user", "parts": [{"text": "And doubled?"}]}],
        "tools": [{"codeExecution": {}}]})
    async with running(tmp_path) as gateway:
        response = await _post(gateway, "anthropic-alias", body)
        assert response.status_code == 200, response.text
        assert response.headers["x-cometgate-dropped"] == (
            "contents[1].parts[0].executableCode,contents[1].parts[1].codeExecutionResult")
        sent = gateway.fakes.anthropic.requests[0]["messages"]
        assert sent[1] == {"role": "assistant",
                           "content": [{"type": "text", "text": "The sum is 45."}]}


async def test_the_gateways_own_files_are_not_there(tmp_path: Path) -> None:
    async with running(tmp_path, SANDBOX) as gateway:
        database = str(gateway.settings.data_dir / "cometgate.db")
        code = (f"import os\nprint(os.path.exists({database!r}), os.getuid())\n"
                f"print(open({database!r}, 'rb').read(16))")
        gateway.fakes.openai.replies += _run_then_answer(code)
        response = await _post(gateway, "openai-alias", _body("Read the keys."))
        result = response.json()["candidates"][0]["content"]["parts"][1]["codeExecutionResult"]
        assert result["outcome"] == "OUTCOME_FAILED"
        assert result["output"].startswith("False ")
        assert "No such file or directory" in result["output"]
        assert "SQLite" not in result["output"]


async def test_the_models_listing_says_who_runs_code_and_draws(tmp_path: Path) -> None:
    async def tools(gateway: Gateway, model: str) -> dict[str, Any]:
        response = await gateway.http.get(f"/v1beta/models/{model}",
                                          headers={"x-goog-api-key": gateway.key})
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["cometgate"]["tools"]
        return found

    async with running(tmp_path) as gateway:
        assert (await tools(gateway, "anthropic-alias"))["codeExecution"] == "native"
        assert (await tools(gateway, "openai-alias"))["codeExecution"] is None
        assert (await tools(gateway, "openai-image"))["imageOutput"] == "native"
        assert (await tools(gateway, "openai-alias"))["imageOutput"] is None
    (tmp_path / "on").mkdir()
    async with running(tmp_path / "on", SANDBOX) as gateway:
        assert (await tools(gateway, "openai-alias"))["codeExecution"] == "emulated"
