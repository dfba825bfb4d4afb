"""google-genai's code execution tool (`types.Tool(code_execution=…)`) against a live gateway:
natively on the Anthropic fake (its code execution server tool), and in the gateway's
bubblewrap sandbox on the OpenAI fake, whose model asks for `run_python`; the SDK reads the
`executable_code` and `code_execution_result` parts, whole and streamed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import types

from tests.e2e.conftest import LiveGateway
from tests.e2e.fake_upstreams_live import FakesGateway, serve_before_fakes
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import openai_upstream as openai

CODE_TOOL = types.GenerateContentConfig(
    tools=[types.Tool(code_execution=types.ToolCodeExecution())])


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "code-sdk", sandbox=True)


def gemini(gateway: LiveGateway) -> genai.Client:
    return genai.Client(api_key=gateway.key, http_options=types.HttpOptions(
        base_url=gateway.base_url, api_version="v1beta", timeout=30_000))


def test_anthropic_runs_code_for_google_genai(live: FakesGateway) -> None:
    live.clear_scripts()
    live.fakes.anthropic.replies.append(anthropic.Reply(
        text="It is 1024.", code="print(2 ** 10)", code_stdout="1024\n"))
    client = gemini(live.gateway)  # held: a collected client closes its connections
    answer = client.models.generate_content(
        model="anthropic-text", contents="2 to the 10th, with code", config=CODE_TOOL)
    assert answer.executable_code == "print(2 ** 10)"
    assert answer.code_execution_result == "1024\n"
    assert answer.text == "It is 1024."


def test_the_sandbox_runs_code_for_google_genai_streamed(live: FakesGateway) -> None:
    live.clear_scripts()
    live.fakes.openai.replies += [
        openai.Reply(text=None, tool_calls=[{"name": "run_python", "arguments": {
            "code": "import math\nprint(math.factorial(10))"}}], finish_reason="tool_calls"),
        openai.Reply(text="10! is 3628800.")]
    client = gemini(live.gateway)
    chunks = list(client.models.generate_content_stream(
        model="openai-text", contents="10 factorial, with code", config=CODE_TOOL))
    parts = [part for chunk in chunks for c in chunk.candidates or []
             for part in (c.content.parts if c.content and c.content.parts else [])]
    code = [p.executable_code for p in parts if p.executable_code is not None]
    results = [p.code_execution_result for p in parts if p.code_execution_result is not None]
    assert code[0].code == "import math\nprint(math.factorial(10))"
    assert results[0].outcome == types.Outcome.OUTCOME_OK
    assert results[0].output == "3628800\n"
    assert "".join(p.text or "" for p in parts) == "10! is 3628800."


def test_the_local_gemini_refusal_names_the_models_with_code(live: FakesGateway) -> None:
    # Every model has it here (the sandbox is on), so a refusal needs another reason: a
    # function named like the sandbox's own.
    live.clear_scripts()
    config = types.GenerateContentConfig(tools=[
        types.Tool(code_execution=types.ToolCodeExecution()),
        types.Tool(function_declarations=[types.FunctionDeclaration(
            name="run_python", description="mine")])])
    client = gemini(live.gateway)
    with pytest.raises(genai.errors.ClientError) as caught:
        client.models.generate_content(
            model="openai-text", contents="x", config=config)
    assert caught.value.code == 400
    assert "run_python cannot be declared with codeExecution" in str(caught.value.message)
