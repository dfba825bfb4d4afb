"""Gemini `GenerationConfig` (normalised) → canonical params, output format and thinking.

Range checks follow the limits the API reference documents (temperature [0, 2], topP [0, 1],
presence/frequency penalty [-2, 2), logprobs [0, 20] only with responseLogprobs, at most 5
stop sequences, candidateCount 1..8).

Fields with no canonical meaning, and what happens to them elsewhere:

| field                       | droppable | why                                          |
|-----------------------------|-----------|----------------------------------------------|
| speechConfig                | no        | asks for spoken output                       |
| responseModalities AUDIO…   | no        | asks for output no other model produces      |
| mediaResolution             | yes       | tunes how many tokens input media costs      |
| enableEnhancedCivicAnswers  | yes       | tunes answers on a narrow topic              |
| audioTranscriptionConfig    | yes       | transcripts of audio, which we never produce |

responseModalities TEXT and IMAGE are canonical (`GenerateRequest.response_modalities`), and
so is imageConfig (`image_shape`): a model configured for images draws them, any other model
refuses IMAGE.
"""

from __future__ import annotations

from typing import Any

from cometgate.canonical import GenerationParams, OutputFormat, ThinkingConfig
from cometgate.canonical.images import ImageShape
from cometgate.dialects.gemini.caller_context import DecodeContext
from cometgate.dialects.gemini.caller_openapi_schema import to_json_schema
from cometgate.dialects.gemini.protojson import Normalised, to_json
from cometgate.dialects.gemini.schema import message_type
from cometgate.dialects.schema_check import schema_violation

_GC = "generation_config"
_CONFIG = message_type("GenerationConfig")
_FOREIGN = (
    ("speech_config", "speechConfig", False, "spoken output is only produced by Gemini models"),
    ("media_resolution", "mediaResolution", True, "media resolution is a Gemini setting"),
    (
        "enable_enhanced_civic_answers",
        "enableEnhancedCivicAnswers",
        True,
        "enhanced civic answers are a Gemini feature",
    ),
    (
        "audio_transcription_config",
        "audioTranscriptionConfig",
        True,
        "audio transcription is a Gemini feature",
    ),
)
_FOREIGN_NAMES = frozenset(camel for _, camel, _, _ in _FOREIGN)
_FOREIGN_FIELDS = frozenset(proto_name for proto_name, _, _, _ in _FOREIGN)
_CANONICAL_MODALITIES = ("TEXT", "IMAGE")
_TEXT_MIME = "text/plain"
_JSON_MIME = "application/json"
_ENUM_MIME = "text/x.enum"
# Google also accepts these two; nothing canonical can produce them.
_OTHER_GOOGLE_MIMES = ("application/xml", "application/yaml")
_ALLOWED_MIMES_TEXT = (
    "allowed mimetypes are `text/plain`, `application/json`, `application/xml`, "
    "`application/yaml` and `text/x.enum`."
)
# (field, lowest, highest, highest is inclusive, message)
_RANGES = (
    ("temperature", 0.0, 2.0, True, "temperature must be in the range [0.0, 2.0]."),
    ("top_p", 0.0, 1.0, True, "top_p must be in the range [0.0, 1.0]."),
    ("top_k", 1, None, True, "top_k must be greater than 0."),
    ("max_output_tokens", 1, None, True, "max_output_tokens must be greater than 0."),
    ("candidate_count", 1, 8, True, "candidate_count must be in the range [1, 8]."),
    ("presence_penalty", -2.0, 2.0, False, "presence_penalty must be in the range [-2.0, 2.0)."),
    ("frequency_penalty", -2.0, 2.0, False, "frequency_penalty must be in the range [-2.0, 2.0)."),
    ("logprobs", 0, 20, True, "logprobs must be in the range [0, 20]."),
)
_MAX_STOP_SEQUENCES = 5


def decode_generation_config(
    config: Normalised, ctx: DecodeContext
) -> tuple[GenerationParams, OutputFormat | None, ThinkingConfig | None]:
    _check_ranges(config, ctx)
    _record_foreign(config, ctx)
    params = GenerationParams(
        temperature=config.get("temperature"),
        top_p=config.get("top_p"),
        top_k=config.get("top_k"),
        max_output_tokens=config.get("max_output_tokens"),
        stop_sequences=tuple(config.get("stop_sequences", ())),
        seed=config.get("seed"),
        presence_penalty=config.get("presence_penalty"),
        frequency_penalty=config.get("frequency_penalty"),
        candidate_count=config.get("candidate_count", 1),
        response_logprobs=config.get("response_logprobs", False),
        logprobs=config.get("logprobs"),
    )
    return params, _decode_output(config, ctx), _decode_thinking(config, ctx)


def _check_ranges(config: Normalised, ctx: DecodeContext) -> None:
    for name, low, high, high_inclusive, text in _RANGES:
        value = config.get(name)
        if value is None:
            continue
        too_high = high is not None and (value > high if high_inclusive else value >= high)
        if value < low or too_high:
            ctx.violation(f"{_GC}.{name}", text)
    if len(config.get("stop_sequences", ())) > _MAX_STOP_SEQUENCES:
        ctx.violation(f"{_GC}.stop_sequences", "at most 5 stop sequences are allowed.")
    if "logprobs" in config and not config.get("response_logprobs"):
        ctx.violation(f"{_GC}.logprobs", "logprobs is only valid if response_logprobs is true.")


def _record_foreign(config: Normalised, ctx: DecodeContext) -> None:
    if not _FOREIGN_FIELDS.isdisjoint(config):
        rendered = to_json(_CONFIG, config, only=_FOREIGN_NAMES)
        for proto_name, camel, droppable, reason in _FOREIGN:
            if proto_name in config:
                ctx.untranslated_field(
                    f"generationConfig.{camel}", reason, rendered[camel], droppable=droppable
                )
    modalities = config.get("response_modalities", [])
    if any(m not in _CANONICAL_MODALITIES for m in modalities):
        ctx.untranslated_field(
            "generationConfig.responseModalities",
            "only Gemini models produce audio or video output",
            modalities,
            droppable=False,
        )


def image_shape(config: Normalised) -> ImageShape | None:
    shape = config.get("image_config")
    if shape is None:
        return None
    return ImageShape(shape.get("aspect_ratio") or None, shape.get("image_size") or None)


def response_modalities(config: Normalised) -> tuple[str, ...]:
    """TEXT and IMAGE as asked for, in order and once each; empty: text only."""
    asked = (m for m in config.get("response_modalities", []) if m in _CANONICAL_MODALITIES)
    return tuple(dict.fromkeys(asked))


def _decode_output(config: Normalised, ctx: DecodeContext) -> OutputFormat | None:
    mime = config.get("response_mime_type") or _TEXT_MIME
    schema = _response_schema(config, ctx)
    if mime in _OTHER_GOOGLE_MIMES:
        ctx.untranslated_field(
            "generationConfig.responseMimeType",
            f"{mime} output is only produced by Gemini models",
            mime,
            droppable=False,
        )
        return None
    if mime not in (_TEXT_MIME, _JSON_MIME, _ENUM_MIME):
        ctx.violation(f"{_GC}.response_mime_type", _ALLOWED_MIMES_TEXT)
        return None
    if mime == _TEXT_MIME:
        if schema is not None:
            ctx.violation(
                f"{_GC}.response_mime_type",
                "response_mime_type must be "
                "application/json or text/x.enum when a response schema is set.",
            )
        return None
    if mime == _ENUM_MIME:
        return _enum_output(schema, ctx)
    return OutputFormat(kind="json", schema=schema)


def _response_schema(config: Normalised, ctx: DecodeContext) -> dict[str, Any] | None:
    openapi = config.get("response_schema")
    json_schemas = [
        config[key]
        for key in ("response_json_schema", "response_json_schema_ordered")
        if key in config
    ]
    if openapi is not None and json_schemas:
        ctx.violation(
            f"{_GC}.response_schema", "response_schema and response_json_schema cannot both be set."
        )
        return None
    if len(json_schemas) > 1:
        ctx.violation(f"{_GC}.response_json_schema", "response_json_schema is set twice.")
        return None
    if openapi is not None:
        return to_json_schema(openapi)
    if json_schemas:
        if not isinstance(json_schemas[0], dict):
            ctx.violation(f"{_GC}.response_json_schema", "must be a JSON object.")
            return None
        problem = schema_violation(json_schemas[0], f"{_GC}.response_json_schema")
        if problem is not None:
            ctx.violation(*problem)
            return None
        return dict(json_schemas[0])
    return None


def _enum_output(schema: dict[str, Any] | None, ctx: DecodeContext) -> OutputFormat | None:
    values = schema.get("enum") if schema else None
    kind = schema.get("type") if schema else None
    if (
        not values
        or kind not in ("string", ["string", "null"])
        or not all(isinstance(v, str) for v in values)
    ):
        ctx.violation(
            f"{_GC}.response_schema",
            "text/x.enum requires a response schema of type STRING with enum values.",
        )
        return None
    return OutputFormat(kind="enum", schema={"type": "string", "enum": list(values)})


def _decode_thinking(config: Normalised, ctx: DecodeContext) -> ThinkingConfig | None:
    thinking = config.get("thinking_config")
    if thinking is None:
        return None
    level = thinking.get("thinking_level")
    if level == "THINKING_LEVEL_UNSPECIFIED":
        level = None
    budget = thinking.get("thinking_budget")
    if budget is not None and level is not None:
        ctx.plain_violation(
            f"{_GC}.thinking_config",
            "You can only set only one of thinking budget and thinking level.",
        )
    return ThinkingConfig(
        include_thoughts=thinking.get("include_thoughts"), budget=budget, level=level
    )
