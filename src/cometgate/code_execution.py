"""Code execution (Gemini's `codeExecution` tool) on every model that can have it.

Native where the upstream runs code itself (Anthropic's code execution server tool; Gemini by
pass-through): its answer's code and results come back as CodePart and CodeResultPart.
Emulated, when the operator enabled the sandbox, on every other upstream: the model is offered
a function `run_python(code)` in place of the built-in tool; each call it makes is run in the
sandbox (`sandbox.py`) and its result handed back, until it answers without one (at most
`max_runs` runs). The answer holds, in order, the model's text, a CodePart and CodeResultPart
for each run, and its final text; its usage adds up every round and the sandbox's seconds.
Refused otherwise, naming the models here that have it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from cometgate.canonical import (
    Candidate,
    CodeOutcome,
    CodePart,
    CodeResultPart,
    FinishReason,
    FunctionTool,
    GenerateRequest,
    GenerateResponse,
    Message,
    Part,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from cometgate.errors import InvalidRequest
from cometgate.providers.base import RunsCode
from cometgate.sandbox import BubblewrapSandbox, RunResult

RUN_PYTHON = "run_python"
_RUN_TOOL = FunctionTool(
    name=RUN_PYTHON,
    description=(
        "Run a Python 3 program and get what it printed. Use it for any calculation, data "
        "processing or check that code can do exactly. Only the standard library is there; "
        "there is no network and no file from outside. Print what you need to see."),
    parameters={"type": "object", "properties": {"code": {
        "type": "string", "description": "The whole program, run as a script."}},
        "required": ["code"]},
)


def runs_code(provider: object) -> bool:
    return isinstance(provider, RunsCode) and provider.runs_code()


Generate = Callable[[GenerateRequest], Awaitable[GenerateResponse]]


async def emulated(request: GenerateRequest, generate: Generate,
                   sandbox: BubblewrapSandbox) -> GenerateResponse:
    """The answer of a model that writes code for the sandbox to run (see the module text)."""
    if any(tool.name == RUN_PYTHON for tool in request.tools):
        raise InvalidRequest(f"tools: a function named {RUN_PYTHON} cannot be declared with "
                             "codeExecution on this model: the gateway offers it the sandbox "
                             "under that name.", violations={"tools": "name taken"})
    asking = replace(request, code_execution=False, tools=(*request.tools, _RUN_TOOL))
    parts: list[Part] = []
    usage = Usage()
    runs = 0
    while True:
        response = await generate(asking)
        usage = _added(usage, response.usage)
        candidate = response.candidates[0]
        calls = [p for p in candidate.parts
                 if isinstance(p, ToolCallPart) and p.name == RUN_PYTHON]
        others = [p for p in candidate.parts
                  if not (isinstance(p, ToolCallPart) and p.name == RUN_PYTHON)]
        parts.extend(others)
        if not calls or runs >= sandbox.settings.max_runs or len(calls) < len(
                [p for p in candidate.parts if isinstance(p, ToolCallPart)]):
            # Done; out of runs; or a call to the caller's own function is there, which only
            # the caller can answer: the answer goes back as it stands.
            return _answer(response, candidate, parts, usage)
        results: list[Part] = []
        for call in calls:
            ran = await _run(call, sandbox)
            runs += 1
            usage = replace(usage, sandbox_seconds=usage.sandbox_seconds + ran.seconds)
            parts.extend((CodePart(_code(call)), CodeResultPart(ran.outcome, ran.output)))
            results.append(ToolResultPart(RUN_PYTHON, {"outcome": ran.outcome.value,
                                                       "output": ran.output}, call.call_id))
        asking = replace(asking, messages=(
            *asking.messages, Message("assistant", candidate.parts),
            Message("user", tuple(results))))


def _code(call: ToolCallPart) -> str:
    code = call.arguments.get("code")
    return code if isinstance(code, str) else ""


async def _run(call: ToolCallPart, sandbox: BubblewrapSandbox) -> RunResult:
    code = _code(call)
    if not code.strip():
        return RunResult(CodeOutcome.FAILED, "run_python needs the program in `code`", 0.0)
    return await sandbox.run(code)


def _added(total: Usage, more: Usage) -> Usage:
    return replace(
        total, prompt_tokens=total.prompt_tokens + more.prompt_tokens,
        output_tokens=total.output_tokens + more.output_tokens,
        thoughts_tokens=total.thoughts_tokens + more.thoughts_tokens,
        cached_tokens=total.cached_tokens + more.cached_tokens,
        searches=total.searches + more.searches,
        service_tier=more.service_tier or total.service_tier)


def _answer(last: GenerateResponse, candidate: Candidate, parts: list[Part],
            usage: Usage) -> GenerateResponse:
    reason = candidate.finish_reason or FinishReason.STOP
    return replace(last, candidates=(replace(candidate, parts=tuple(parts),
                                             finish_reason=reason),),
                   usage=usage, created=last.created or time.time())
