"""A request for a generation, as the gateway understands it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from cometgate.canonical.images import ImageShape
from cometgate.canonical.messages import JSON, Message, Part


class ToolMode(StrEnum):
    AUTO = "auto"  # the model decides between text and a call
    ANY = "any"  # the model must call one of the (allowed) functions
    NONE = "none"  # the model must not call functions
    VALIDATED = "validated"  # like AUTO, but calls are constrained to the declared schemas


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ToolMode = ToolMode.AUTO
    allowed_names: tuple[str, ...] = ()  # empty: every declared function


@dataclass(frozen=True, slots=True)
class FunctionTool:
    name: str
    description: str = ""
    parameters: Mapping[str, JSON] | None = None  # JSON Schema (dialect schemas are converted)


@dataclass(frozen=True, slots=True)
class WebSearchTool:
    """A web search the upstream runs for the model (a built-in tool: the caller never sees a
    call to answer). Upstreams with a search of their own carry it; for the others the gateway
    runs the search itself where an operator configured a search backend (`grounding`), and
    refuses the request otherwise. `max_uses` bounds the searches of one answer where the
    upstream allows. `path`: where the caller asked for it, in its own dialect's spelling
    ("tools[0].googleSearch"), for a refusal or a report that names the caller's field."""

    max_uses: int | None = None
    path: str = ""


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """Constrained output. `kind="enum"` means plain text that is exactly one of the schema's
    enum values (Gemini's text/x.enum); `kind="json"` means a JSON document (schema optional)."""

    kind: Literal["json", "enum"]
    schema: Mapping[str, JSON] | None = None


@dataclass(frozen=True, slots=True)
class ThinkingConfig:
    include_thoughts: bool | None = None
    budget: int | None = None  # tokens; -1 = dynamic, 0 = off
    level: str | None = None  # MINIMAL, LOW, MEDIUM, HIGH, XHIGH


@dataclass(frozen=True, slots=True)
class GenerationParams:
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    stop_sequences: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    candidate_count: int = 1
    response_logprobs: bool = False
    logprobs: int | None = None  # alternatives per token


@dataclass(frozen=True, slots=True)
class Untranslated:
    """A caller field with no canonical meaning: only an upstream of the caller's own dialect
    can carry it. Anything else must refuse the request, or, when `droppable` (the field only
    tunes the output), drop it and report `path` to the caller."""

    path: str  # in the caller's dialect, e.g. "tools[1].googleSearch"
    reason: str  # why it cannot be honoured elsewhere, for the error message
    droppable: bool = False


@dataclass(frozen=True, slots=True)
class PromptCache:
    """The request starts with a cached prefix: the system instruction and tools, and its
    first `messages` messages. `key` names the prefix stably (the same cache, the same key),
    so an upstream with a prompt cache of its own can be told what to keep and reuse."""

    key: str
    messages: int


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """`model` is what the caller asked for (an alias); routing turns it into a target.

    `extensions` holds what has no canonical meaning, keyed by dialect ("gemini", …), so a
    same-dialect upstream can carry it; a codec reads only its own key. `untranslated` names
    those same fields for everyone else, so that no upstream drops them in silence."""

    model: str
    messages: tuple[Message, ...]
    system: tuple[Part, ...] = ()
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    params: GenerationParams = GenerationParams()
    output: OutputFormat | None = None
    thinking: ThinkingConfig | None = None
    extensions: Mapping[str, Mapping[str, JSON]] = field(default_factory=dict)
    untranslated: tuple[Untranslated, ...] = ()
    web_search: WebSearchTool | None = None
    # URL context: the pages the prompt names are to be read for the model (by the upstream
    # where it can, by the gateway elsewhere).
    url_context: bool = False
    # Google Maps grounding: only an upstream with Google's own Maps can serve it.
    google_maps: bool = False
    prompt_cache: PromptCache | None = None
    # What the answer may hold, as Gemini's responseModalities says it ("TEXT", "IMAGE");
    # empty: text only. A model that cannot draw refuses IMAGE.
    response_modalities: tuple[str, ...] = ()
    image_shape: ImageShape | None = None  # of the pictures asked for, when IMAGE is
    # A code-execution tool the model may use (Gemini's codeExecution): run by the upstream
    # where it has one (Anthropic's), else by the gateway's sandbox when the operator enabled
    # it; refused otherwise. The answer carries CodePart and CodeResultPart parts.
    code_execution: bool = False
