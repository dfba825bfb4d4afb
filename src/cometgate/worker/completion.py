"""One chat completion end to end on the engine: plan, generate n choices, shape the answer.

Invariants:
- The prompt for a request is rendered and tokenized by `prompt_tokens` alone, which /tokenize
  also uses, so its count always equals the completion's usage.prompt_tokens.
- A constrained request (JSON format, forced tool call) always carries a grammar llama.cpp has
  parsed; an unusable schema is the caller's fault (400), never a crash.
- Streams put text out as soon as it is known not to be the start of a tool call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from cometgate.dialects.schema_check import schema_violation
from cometgate.worker.engine import Engine, Ticket
from cometgate.worker.generation import (
    Failed,
    Finished,
    GenerationJob,
    TextDelta,
    TokenLogprob,
)
from cometgate.worker.grammar import (
    json_object_grammar,
    json_schema_grammar,
    tool_call_grammar,
)
from cometgate.worker.openai_wire import (
    SSE_DONE,
    ChoiceResult,
    StreamIdentity,
    Usage,
    chunk,
    error_body,
    sse_event,
    tool_calls_wire,
    usage_chunk,
)
from cometgate.worker.prompt import TemplateError, render_prompt
from cometgate.worker.request import ChatMessage, ChatRequest, RequestError, Tool
from cometgate.worker.schema_grammar import SchemaNotSupported
from cometgate.worker.tool_markup import could_become_tool_call, parse_tool_calls


class GenerationFailed(RuntimeError):
    """The engine failed while generating (not the caller's fault)."""


@dataclass(frozen=True, slots=True)
class CompletionPlan:
    prompt_tokens: tuple[int, ...]
    jobs: tuple[GenerationJob, ...]  # one per choice
    tool_names: frozenset[str]  # functions whose calls are parsed out of the output
    report_cached: bool = False  # the caller named a prompt cache: say what was reused


def described_tools(tools: Sequence[Tool], tool_choice: str) -> tuple[Tool, ...]:
    return () if tool_choice == "none" else tuple(tools)


def prompt_tokens(
    engine: Engine, messages: Sequence[ChatMessage], tools: Sequence[Tool]
) -> list[int]:
    try:
        text = render_prompt(engine.template, messages, tools)
    except TemplateError as error:
        raise RequestError(str(error), param="messages") from error
    return engine.tokenize(text)


def plan_completion(engine: Engine, request: ChatRequest) -> CompletionPlan:
    tokens = prompt_tokens(engine, request.messages, described_tools(request.tools,
                                                                     request.tool_choice))
    room = engine.n_ctx - len(tokens)
    if room <= 0:
        raise RequestError(
            f"This model's maximum context length is {engine.n_ctx} tokens. However, your "
            f"messages resulted in {len(tokens)} tokens. Please reduce the length of the "
            "messages.", param="messages", code="context_length_exceeded",
        )
    grammar = _grammar_for(request)
    if grammar is not None and not engine.grammar_is_valid(grammar):
        raise RequestError("The schema could not be compiled into a grammar.",
                           param=_constraint_param(request))
    job = GenerationJob(
        prompt_tokens=tuple(tokens),
        sampling=request.sampling,
        max_tokens=min(request.max_tokens or room, room),
        stop=request.stop,
        grammar=grammar,
        top_logprobs=request.top_logprobs if request.logprobs else None,
    )
    names = frozenset(spec.name for spec in request.callable_functions())
    return CompletionPlan(tuple(tokens), _per_choice(job, request.n), names,
                          report_cached=request.prompt_cache_key is not None)


def plan_usage(plan: CompletionPlan, completion_tokens: int, cached_tokens: int) -> Usage:
    """The answer's usage; prompt-cache hits only when the caller named a prompt cache."""
    return Usage(len(plan.prompt_tokens), completion_tokens,
                 cached_tokens if plan.report_cached else None)


def _per_choice(job: GenerationJob, n: int) -> tuple[GenerationJob, ...]:
    seed = job.sampling.seed
    if seed is None:
        return (job,) * n
    # Same seed for every choice would give n identical answers; offset it per choice.
    return tuple(replace(job, sampling=replace(job.sampling, seed=seed + i)) for i in range(n))


def _grammar_for(request: ChatRequest) -> str | None:
    functions = request.callable_functions()
    _check_schemas(request)
    try:
        if functions:
            forced = request.tool_choice in ("required", "function")
            parallel = request.parallel_tool_calls and request.tool_choice != "function"
            return tool_call_grammar(functions, parallel=parallel, allow_text=not forced)
        if request.response_format.kind == "json_object":
            return json_object_grammar()
        if request.response_format.kind == "json_schema":
            return json_schema_grammar(request.response_format.schema)
    except SchemaNotSupported as error:
        raise RequestError(f"Invalid schema: {error}", param=_constraint_param(request)) from error
    except (ValueError, TypeError) as error:
        # Whatever the checks above miss, a schema that cannot be converted is still the
        # caller's to fix, never a fault of this worker.
        raise RequestError("The schema could not be compiled into a grammar.",
                           param=_constraint_param(request)) from error
    return None


def _check_schemas(request: ChatRequest) -> None:
    """Refuse a malformed schema as the caller's fault, naming the keyword."""
    schemas: list[tuple[str, object]] = [
        (f"tools[{i}].function.parameters", tool.function.parameters)
        for i, tool in enumerate(request.tools)]
    if request.response_format.kind == "json_schema":
        schemas.append(("response_format.json_schema.schema", request.response_format.schema))
    for where, schema in schemas:
        problem = None if schema is None else schema_violation(schema, where)
        if problem is not None:
            raise RequestError(problem[1], param=problem[0])


def _constraint_param(request: ChatRequest) -> str:
    return "tools" if request.callable_functions() else "response_format"


def submit_all(engine: Engine, plan: CompletionPlan) -> list[Ticket]:
    return [engine.submit(job) for job in plan.jobs]


async def collect_choices(
    tickets: Sequence[Ticket], plan: CompletionPlan
) -> tuple[list[ChoiceResult], Usage]:
    """All choices, finished; and the usage of them all (the first choice's KV reuse: the
    others run the same prompt right after it)."""
    choices, total, cached = [], 0, None
    for index, ticket in enumerate(tickets):
        text, logprobs, finished = "", list[TokenLogprob](), None
        async for event in ticket.events():
            if isinstance(event, TextDelta):
                text += event.text
                logprobs += event.logprobs
            elif isinstance(event, Failed):
                raise GenerationFailed(event.message)
            else:
                finished = event
        assert finished is not None  # events() always ends with Finished or Failed
        total += finished.completion_tokens
        cached = finished.cached_tokens if cached is None else cached
        wanted = ticket.job.top_logprobs is not None
        choices.append(_choice(index, text, finished, plan, tuple(logprobs) if wanted else None))
    return choices, plan_usage(plan, total, cached or 0)


def _choice(
    index: int, text: str, finished: Finished, plan: CompletionPlan,
    logprobs: tuple[TokenLogprob, ...] | None,
) -> ChoiceResult:
    truncated = finished.finish_reason == "length"
    calls = (
        parse_tool_calls(text, plan.tool_names, truncated=truncated) if plan.tool_names else None
    )
    if calls:
        return ChoiceResult(index, None, tuple(calls), "tool_calls", logprobs)
    return ChoiceResult(index, text, (), _wire_finish(finished), logprobs)


def _wire_finish(finished: Finished) -> str:
    return "length" if finished.finish_reason == "length" else "stop"


async def stream_completion(
    tickets: Sequence[Ticket], plan: CompletionPlan, identity: StreamIdentity,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The SSE body. Choices are streamed one after another, each with its index. Leaving the
    iteration early (client gone) cancels every ticket."""
    completion_tokens, cached = 0, None
    try:
        for index, ticket in enumerate(tickets):
            choice = _ChoiceStream(identity, index, plan, include_usage)
            async for event in ticket.events():
                for payload in choice.on_event(event):
                    yield sse_event(payload)
                if isinstance(event, Failed):
                    return
            completion_tokens += choice.completion_tokens
            cached = choice.cached_tokens if cached is None else cached
        if include_usage:
            usage = plan_usage(plan, completion_tokens, cached or 0)
            yield sse_event(usage_chunk(identity, usage))
        yield SSE_DONE
    finally:
        for ticket in tickets:
            ticket.cancel()


class _ChoiceStream:
    """Turns one choice's engine events into chunk payloads, holding back text while it may
    still be a tool call."""

    def __init__(self, identity: StreamIdentity, index: int, plan: CompletionPlan,
                 include_usage: bool) -> None:
        self._identity, self._index, self._plan = identity, index, plan
        self._usage_field = include_usage
        self._held = ""
        self._held_logprobs: list[TokenLogprob] = []
        self._deciding = bool(plan.tool_names)
        self._started = False
        self.completion_tokens = 0
        self.cached_tokens = 0

    def on_event(self, event: TextDelta | Finished | Failed) -> list[dict[str, object]]:
        out = [] if self._started else [self._chunk({"role": "assistant", "content": ""})]
        self._started = True
        if isinstance(event, Failed):
            out.append(error_body(event.message, kind="server_error"))
        elif isinstance(event, TextDelta):
            out += self._on_text(event)
        else:
            self.completion_tokens = event.completion_tokens
            self.cached_tokens = event.cached_tokens
            out += self._on_finish(event)
        return out

    def _on_text(self, delta: TextDelta) -> list[dict[str, object]]:
        if self._deciding:
            self._held += delta.text
            self._held_logprobs += delta.logprobs
            if could_become_tool_call(self._held):
                return []
            self._deciding = False
            delta = TextDelta(self._held, tuple(self._held_logprobs))
        if not delta.text and not delta.logprobs:
            return []
        return [self._chunk({"content": delta.text}, logprobs=delta.logprobs)]

    def _on_finish(self, finished: Finished) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        reason = _wire_finish(finished)
        if self._deciding:
            calls = parse_tool_calls(self._held, self._plan.tool_names,
                                     truncated=finished.finish_reason == "length")
            if calls:
                wire = tool_calls_wire(calls, indexed=True)
                out.append(self._chunk({"tool_calls": wire}, logprobs=self._held_logprobs))
                reason = "tool_calls"
            elif self._held or self._held_logprobs:
                out.append(self._chunk({"content": self._held}, logprobs=self._held_logprobs))
        out.append(self._chunk({}, finish_reason=reason))
        return out

    def _chunk(self, delta: dict[str, object], *, finish_reason: str | None = None,
               logprobs: Sequence[TokenLogprob] | None = None) -> dict[str, object]:
        wanted = self._plan.jobs[self._index].top_logprobs is not None
        return chunk(self._identity, self._index, dict(delta), finish_reason=finish_reason,
                     logprobs=logprobs if wanted and logprobs else None,
                     with_usage_field=self._usage_field)
