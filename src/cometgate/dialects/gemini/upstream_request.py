"""Canonical request → Gemini `GenerateContentRequest` JSON, for a Gemini upstream reached by
translation (callers of another dialect).

The mirror of the inbound decoder: for every request R that decoder produces from a Gemini body,
`decode_generate_request(encode_request(R))` gives R back, save that the paths it records for
built-in tools may name other `tools[i]` (all function declarations go first, in one element).
Written as Google documents it:
camelCase keys, bytes in standard base64, proto3 defaults left out, function schemas as
`parametersJsonSchema` (canonical parameters are JSON Schema already).

Where a canonical request says something Gemini would refuse, the meaning is kept instead:

- allowed function names go with modes ANY and VALIDATED only: under AUTO the declarations are
  narrowed to the allowed ones, under NONE the names mean nothing and are left out;
- `logprobs` also sets `responseLogprobs`, which Google requires with it;
- a tool result without a name takes the name of the call with its id (Gemini pairs by name);
- enum output goes as `text/x.enum` with the OpenAPI `responseSchema` Google documents for it.

`extensions["gemini"]` (a Gemini caller's fields with no canonical meaning) is put back where
it came from (`upstream_extensions`); the canonical request wins where both speak.
`Encoded.dropped` names only what cannot be placed: a thought signature on a system instruction,
and kept fields whose place is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cometgate.canonical import (
    GenerateRequest,
    GenerationParams,
    Message,
    OutputFormat,
    Part,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolMode,
    ToolResultPart,
)
from cometgate.dialects.gemini.parts import encode_part
from cometgate.dialects.gemini.paths import PARAM_FIELDS, THINKING_FIELDS
from cometgate.dialects.gemini.upstream_extensions import GeminiExtras, read_extras
from cometgate.dialects.upstream_answers import describe_part
from cometgate.dialects.upstream_codec import Encoded
from cometgate.errors import InvalidRequest

_ROLES = {"user": "user", "assistant": "model"}
_DEFAULT_PARAMS = GenerationParams()
_NAMES_ALLOWED_WITH = (ToolMode.ANY, ToolMode.VALIDATED)
# Google's documented stand-in for a signature the history never had (a conversation begun on
# another model): Gemini 3 refuses a model turn whose function calls carry no signature.
VALIDATOR_SKIP_SIGNATURE = "skip_thought_signature_validator"


def encode_request(
    request: GenerateRequest,
    upstream_model: str,
    *,
    stream: bool,
    vouch_unsigned_calls: bool = False,
) -> Encoded:
    """The body is the same for `:generateContent` and `:streamGenerateContent` (the model
    and the framing travel in the path). `vouch_unsigned_calls` gives the first function call
    of a model turn that carries no signature at all Google's stand-in signature, so that a
    history from another dialect is accepted by Gemini 3 models; off, nothing is added."""
    extras = read_extras(request.extensions)
    dropped = list(extras.unplaced)
    body: dict[str, Any] = dict(extras.top_level)
    body["contents"] = _contents(request.messages, extras, dropped, vouch_unsigned_calls)
    system = _system_instruction(request.system, dropped)
    if system is not None:
        body["systemInstruction"] = system
    tools = _tools(request, extras, dropped)
    if tools:
        body["tools"] = tools
    tool_config = _tool_config(request.tool_choice, extras.sections["toolConfig"])
    if tool_config:
        body["toolConfig"] = tool_config
    generation_config = {**extras.sections["generationConfig"], **_generation_config(request)}
    if request.response_modalities:
        # The caller's own list, when it also named a modality with no canonical form (AUDIO).
        generation_config.setdefault("responseModalities", list(request.response_modalities))
    if request.image_shape is not None:
        shape = {"aspectRatio": request.image_shape.aspect_ratio,
                 "imageSize": request.image_shape.size}
        generation_config["imageConfig"] = {k: v for k, v in shape.items() if v is not None}
    if generation_config:
        body["generationConfig"] = generation_config
    return Encoded(body, tuple(dropped))


# --- conversation -------------------------------------------------------------------------


def _contents(messages: tuple[Message, ...], extras: GeminiExtras, dropped: list[str],
              vouch: bool) -> list[dict[str, Any]]:
    """One content per message; a message left without parts is left out (Google refuses
    empty contents, and such a message says nothing)."""
    call_names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        parts = [encode_part(_named(part, call_names)) for part in message.parts]
        parts = extras.restore_parts(index, parts, dropped)
        if vouch and message.role == "assistant":
            _vouch_for_calls(parts)
        if parts:
            contents.append({"role": _ROLES[message.role], "parts": parts})
    dropped.extend(extras.orphans(len(messages)))
    return contents


def _named(part: Part, call_names: dict[str, str]) -> Part:
    """A tool result named after the call it answers, when it names only the call's id."""
    if isinstance(part, ToolCallPart) and part.call_id:
        call_names[part.call_id] = part.name
    if isinstance(part, ToolResultPart) and not part.name and part.call_id in call_names:
        return replace(part, name=call_names[part.call_id])
    return part


def _vouch_for_calls(parts: list[dict[str, Any]]) -> None:
    # Google asks for the signature on the first function call of a step; parallel calls
    # after it carry none. A turn with any signature of its own is left as it is.
    if any("thoughtSignature" in part for part in parts):
        return
    first_call = next((part for part in parts if "functionCall" in part), None)
    if first_call is not None:
        first_call["thoughtSignature"] = VALIDATOR_SKIP_SIGNATURE


def _system_instruction(parts: tuple[Part, ...], dropped: list[str]) -> dict[str, Any] | None:
    texts: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        where = f"system[{index}]"
        if not isinstance(part, TextPart):
            raise InvalidRequest(
                f"the system instruction can only hold text, not {describe_part(part)}",
                violations={where: "must be text"},
            )
        if part.signature is not None:
            dropped.append(f"{where}.signature: a system instruction has no thoughts")
        texts.append({"text": part.text})
    return {"parts": texts} if texts else None


# --- tools --------------------------------------------------------------------------------


def _tools(request: GenerateRequest, extras: GeminiExtras,
           dropped: list[str]) -> list[dict[str, Any]]:
    """All function declarations in one Tool element, then each built-in tool in its own, as
    the Gemini SDKs send them."""
    declarations = [_declaration(tool.name, tool.description, tool.parameters)
                    for tool in request.tools]
    extras.restore_hints(declarations, dropped)
    choice = request.tool_choice
    if choice.mode is ToolMode.AUTO and choice.allowed_names:
        allowed = set(choice.allowed_names)
        declarations = [d for d in declarations if d["name"] in allowed]
    tools: list[dict[str, Any]] = []
    if declarations:
        tools.append({"functionDeclarations": declarations})
    tools.extend(extras.builtin_tools)
    if request.web_search is not None and not any(
            "googleSearch" in tool or "googleSearchRetrieval" in tool
            for tool in extras.builtin_tools):
        # Google Search grounding; it takes no bound on the searches (max_uses).
        tools.append({"googleSearch": {}})
    return tools


def _declaration(name: str, description: str,
                 parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": name}
    if description:
        declaration["description"] = description
    if parameters is not None:
        declaration["parametersJsonSchema"] = dict(parameters)
    return declaration


def _tool_config(choice: ToolChoice, kept: Mapping[str, Any]) -> dict[str, Any]:
    config = dict(kept)
    if choice != ToolChoice():
        calling: dict[str, Any] = {"mode": choice.mode.value.upper()}
        if choice.allowed_names and choice.mode in _NAMES_ALLOWED_WITH:
            calling["allowedFunctionNames"] = list(choice.allowed_names)
        config["functionCallingConfig"] = calling
    return config


# --- generation config --------------------------------------------------------------------


def _generation_config(request: GenerateRequest) -> dict[str, Any]:
    config = _params(request.params)
    if request.output is not None:
        config.update(_output(request.output))
    if request.thinking is not None:
        config["thinkingConfig"] = _thinking(request.thinking)
    return config


def _params(params: GenerationParams) -> dict[str, Any]:
    """Every parameter that differs from its default (proto3 leaves defaults out)."""
    config: dict[str, Any] = {}
    for name, json_name in PARAM_FIELDS.items():
        value = getattr(params, name)
        if value != getattr(_DEFAULT_PARAMS, name):
            config[json_name] = list(value) if isinstance(value, tuple) else value
    if params.logprobs is not None:
        config["responseLogprobs"] = True
    return config


def _output(output: OutputFormat) -> dict[str, Any]:
    if output.kind == "json":
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if output.schema is not None:
            config["responseJsonSchema"] = dict(output.schema)
        return config
    values = output.schema.get("enum") if output.schema is not None else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidRequest(
            "an enum response needs a schema listing the allowed values",
            violations={"output.schema": "required for enum output"},
        )
    return {"responseMimeType": "text/x.enum",
            "responseSchema": {"type": "STRING", "enum": list(values)}}


def _thinking(thinking: ThinkingConfig) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, json_name in THINKING_FIELDS.items():
        value = getattr(thinking, name)
        if value is not None:
            config[json_name] = value.upper() if isinstance(value, str) else value
    return config
