"""Field tables of the v1beta messages the Gemini dialect accepts, for the proto3-JSON parser.

Each message is a `MessageType` whose fields carry both spellings a caller may use: the proto
name (snake_case, sent by google-genai for many nested keys) and the JSON name (lowerCamelCase).
Invariant: within one message no two fields share a proto name or a JSON name. Message fields
name their type by full name and resolve it through `message_type`, so recursive types (Schema)
need no forward references.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

PACKAGE = "google.ai.generativelanguage.v1beta"


class Kind(Enum):
    STRING = "TYPE_STRING"
    BOOL = "TYPE_BOOL"
    INT32 = "TYPE_INT32"
    INT64 = "TYPE_INT64"
    FLOAT = "TYPE_FLOAT"
    DOUBLE = "TYPE_DOUBLE"
    BYTES = "TYPE_BYTES"
    ENUM = "TYPE_ENUM"
    MESSAGE = "TYPE_MESSAGE"
    VALUE = "google.protobuf.Value"  # free-form Struct/Value: keys are user data
    STRING_MAP = "map<string,string>"
    MESSAGE_MAP = "map<string,message>"


_COMPOSITE_KINDS = frozenset((Kind.MESSAGE, Kind.VALUE, Kind.STRING_MAP, Kind.MESSAGE_MAP))


@dataclass(frozen=True, slots=True)
class EnumType:
    full_name: str
    values: tuple[str, ...]  # index = proto number
    case_insensitive: bool = False


@dataclass(frozen=True, slots=True)
class FieldSpec:
    proto_name: str
    json_name: str
    kind: Kind
    repeated: bool = False
    message: str | None = None  # full name, for MESSAGE and MESSAGE_MAP
    enum: EnumType | None = None
    oneof: str | None = None
    # True for kinds read as one JSON scalar (not a message, map or free-form Value); stored as
    # readers test it per field, and hashing an Enum member runs Python code.
    scalar: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scalar", self.kind not in _COMPOSITE_KINDS)


@dataclass(frozen=True, slots=True)
class MessageType:
    full_name: str
    fields: tuple[FieldSpec, ...]
    by_key: Mapping[str, FieldSpec] = field(init=False, repr=False, compare=False)
    # (group, its members) sorted by group name; computed once as readers check it per message.
    oneof_groups: tuple[tuple[str, tuple[FieldSpec, ...]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        keys: dict[str, FieldSpec] = {}
        for spec in self.fields:
            keys[spec.proto_name] = spec
            keys[spec.json_name] = spec
        object.__setattr__(self, "by_key", MappingProxyType(keys))
        groups = sorted({spec.oneof for spec in self.fields if spec.oneof})
        object.__setattr__(
            self, "oneof_groups", tuple((group, self.oneof_members(group)) for group in groups)
        )

    @property
    def short_name(self) -> str:
        return self.full_name.rsplit(".", 1)[-1]

    def oneof_members(self, group: str) -> tuple[FieldSpec, ...]:
        return tuple(spec for spec in self.fields if spec.oneof == group)


def _camel(proto_name: str) -> str:
    head, *rest = proto_name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _f(
    proto_name: str,
    kind: Kind,
    *,
    repeated: bool = False,
    message: str | None = None,
    enum: EnumType | None = None,
    oneof: str | None = None,
    json_name: str | None = None,
) -> FieldSpec:
    full = f"{PACKAGE}.{message}" if message else None
    return FieldSpec(proto_name, json_name or _camel(proto_name), kind, repeated, full, enum, oneof)


def _msg(
    proto_name: str,
    message: str,
    kind: Kind = Kind.MESSAGE,
    *,
    repeated: bool = False,
    oneof: str | None = None,
) -> FieldSpec:
    return _f(proto_name, kind, message=message, repeated=repeated, oneof=oneof)


def _enum(name: str, *values: str, case_insensitive: bool = False) -> EnumType:
    return EnumType(f"{PACKAGE}.{name}", values, case_insensitive)


S, B, I32, I64 = Kind.STRING, Kind.BOOL, Kind.INT32, Kind.INT64
F, D, BY, V = Kind.FLOAT, Kind.DOUBLE, Kind.BYTES, Kind.VALUE

# Google's own REST examples write schema types in lower case ("type": "object"), so the Type
# enum is matched without regard to case; every other enum is exact.
TYPE = _enum(
    "Type",
    "TYPE_UNSPECIFIED",
    "STRING",
    "NUMBER",
    "INTEGER",
    "BOOLEAN",
    "ARRAY",
    "OBJECT",
    "NULL",
    case_insensitive=True,
)
HARM_CATEGORY = _enum(
    "HarmCategory",
    "HARM_CATEGORY_UNSPECIFIED",
    "HARM_CATEGORY_DEROGATORY",
    "HARM_CATEGORY_TOXICITY",
    "HARM_CATEGORY_VIOLENCE",
    "HARM_CATEGORY_SEXUAL",
    "HARM_CATEGORY_MEDICAL",
    "HARM_CATEGORY_DANGEROUS",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
)
HARM_THRESHOLD = _enum(
    "SafetySetting.HarmBlockThreshold",
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    "BLOCK_LOW_AND_ABOVE",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_NONE",
    "OFF",
)
# Google takes these in any case: its own examples once wrote ["Text", "Image"].
MODALITY = _enum(
    "GenerationConfig.Modality", "MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO", "VIDEO",
    case_insensitive=True,
)
MEDIA_RESOLUTION = _enum(
    "GenerationConfig.MediaResolution",
    "MEDIA_RESOLUTION_UNSPECIFIED",
    "MEDIA_RESOLUTION_LOW",
    "MEDIA_RESOLUTION_MEDIUM",
    "MEDIA_RESOLUTION_HIGH",
    "MEDIA_RESOLUTION_ULTRA_HIGH",
)
THINKING_LEVEL = _enum(
    "ThinkingConfig.ThinkingLevel",
    "THINKING_LEVEL_UNSPECIFIED",
    "MINIMAL",
    "LOW",
    "MEDIUM",
    "HIGH",
    "XHIGH",
)
FC_MODE = _enum(
    "FunctionCallingConfig.Mode", "MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"
)
BEHAVIOR = _enum("FunctionDeclaration.Behavior", "UNSPECIFIED", "BLOCKING", "NON_BLOCKING")
SCHEDULING = _enum(
    "FunctionResponse.Scheduling", "SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT"
)
LANGUAGE = _enum("ExecutableCode.Language", "LANGUAGE_UNSPECIFIED", "PYTHON")
OUTCOME = _enum(
    "CodeExecutionResult.Outcome",
    "OUTCOME_UNSPECIFIED",
    "OUTCOME_OK",
    "OUTCOME_FAILED",
    "OUTCOME_DEADLINE_EXCEEDED",
)
RETRIEVAL_MODE = _enum("DynamicRetrievalConfig.Mode", "MODE_UNSPECIFIED", "MODE_DYNAMIC")
ENVIRONMENT = _enum("ComputerUse.Environment", "ENVIRONMENT_UNSPECIFIED", "ENVIRONMENT_BROWSER")

_TABLE: dict[str, tuple[FieldSpec, ...]] = {
    "GenerateContentRequest": (
        _f("model", S),
        _msg("contents", "Content", repeated=True),
        _msg("system_instruction", "Content"),
        _msg("tools", "Tool", repeated=True),
        _msg("tool_config", "ToolConfig"),
        _msg("safety_settings", "SafetySetting", repeated=True),
        _msg("generation_config", "GenerationConfig"),
        _f("cached_content", S),
        _f("labels", Kind.STRING_MAP),
        _f("service_tier", S),
        _f("store", B),
        _f("continuation_token", BY),
    ),
    "CachedContent": (
        _f("name", S),
        _f("display_name", S),
        _f("model", S),
        _msg("contents", "Content", repeated=True),
        _msg("system_instruction", "Content"),
        _msg("tools", "Tool", repeated=True),
        _msg("tool_config", "ToolConfig"),
        # Duration and Timestamp travel as strings in proto3 JSON; cached_content reads them.
        _f("ttl", S, oneof="expiration"),
        _f("expire_time", S, oneof="expiration"),
        _f("create_time", S),
        _f("update_time", S),
        _f("usage_metadata", V),
    ),
    "CountTokensRequest": (
        _f("model", S),
        _msg("contents", "Content", repeated=True),
        _msg("generate_content_request", "GenerateContentRequest"),
    ),
    "Content": (_msg("parts", "Part", repeated=True), _f("role", S)),
    "Part": (
        _f("text", S, oneof="data"),
        _msg("inline_data", "Blob", oneof="data"),
        _msg("file_data", "FileData", oneof="data"),
        _msg("function_call", "FunctionCall", oneof="data"),
        _msg("function_response", "FunctionResponse", oneof="data"),
        _msg("executable_code", "ExecutableCode", oneof="data"),
        _msg("code_execution_result", "CodeExecutionResult", oneof="data"),
        _msg("tool_call", "ToolCall", oneof="data"),
        _msg("tool_response", "ToolResponse", oneof="data"),
        _f("thought", B),
        _f("thought_signature", BY),
        _msg("video_metadata", "VideoMetadata"),
        _f("part_metadata", V),
        _msg("media_resolution", "MediaResolution"),
    ),
    "Blob": (_f("mime_type", S), _f("data", BY)),
    "FileData": (_f("mime_type", S), _f("file_uri", S)),
    "FunctionCall": (_f("id", S), _f("name", S), _f("args", V)),
    "FunctionResponse": (
        _f("id", S),
        _f("name", S),
        _f("response", V),
        _msg("parts", "FunctionResponsePart", repeated=True),
        _f("will_continue", B),
        _f("scheduling", Kind.ENUM, enum=SCHEDULING),
    ),
    "FunctionResponsePart": (_msg("inline_data", "FunctionResponseBlob", oneof="data"),),
    "FunctionResponseBlob": (_f("mime_type", S), _f("data", BY)),
    "ExecutableCode": (_f("language", Kind.ENUM, enum=LANGUAGE), _f("code", S)),
    "CodeExecutionResult": (_f("outcome", Kind.ENUM, enum=OUTCOME), _f("output", S)),
    "ToolCall": (_f("id", S), _f("tool_type", S), _f("args", V)),
    "ToolResponse": (_f("id", S), _f("tool_type", S), _f("response", V)),
    "VideoMetadata": (_f("start_offset", S), _f("end_offset", S), _f("fps", D)),
    "MediaResolution": (
        _f("level", Kind.ENUM, enum=MEDIA_RESOLUTION),
        _f("num_tokens", I32),
    ),
    "Tool": (
        _msg("function_declarations", "FunctionDeclaration", repeated=True),
        _msg("google_search", "GoogleSearch"),
        _msg("google_search_retrieval", "GoogleSearchRetrieval"),
        _msg("code_execution", "CodeExecution"),
        _msg("url_context", "UrlContext"),
        _msg("google_maps", "GoogleMaps"),
        _msg("file_search", "FileSearch"),
        _msg("computer_use", "ComputerUse"),
        _f("mcp_servers", V, repeated=True),
    ),
    "GoogleSearch": (_msg("time_range_filter", "Interval"), _f("search_types", V)),
    "Interval": (_f("start_time", S), _f("end_time", S)),
    "GoogleSearchRetrieval": (_msg("dynamic_retrieval_config", "DynamicRetrievalConfig"),),
    "DynamicRetrievalConfig": (
        _f("mode", Kind.ENUM, enum=RETRIEVAL_MODE),
        _f("dynamic_threshold", F),
    ),
    "CodeExecution": (),
    "UrlContext": (),
    "GoogleMaps": (_f("enable_widget", B),),
    "FileSearch": (
        _f("retrieval_resources", V, repeated=True),
        _f("retrieval_config", V),
    ),
    "ComputerUse": (
        _f("environment", Kind.ENUM, enum=ENVIRONMENT),
        _f("excluded_predefined_functions", S, repeated=True),
    ),
    "FunctionDeclaration": (
        _f("name", S),
        _f("description", S),
        _msg("parameters", "Schema"),
        _f("parameters_json_schema", V),
        _msg("response", "Schema"),
        _f("response_json_schema", V),
        _f("behavior", Kind.ENUM, enum=BEHAVIOR),
    ),
    "Schema": (
        _f("type", Kind.ENUM, enum=TYPE),
        _f("format", S),
        _f("title", S),
        _f("description", S),
        _f("nullable", B),
        _f("enum", S, repeated=True),
        _msg("items", "Schema"),
        _f("max_items", I64),
        _f("min_items", I64),
        _msg("properties", "Schema", Kind.MESSAGE_MAP),
        _f("required", S, repeated=True),
        _f("min_properties", I64),
        _f("max_properties", I64),
        _f("minimum", D),
        _f("maximum", D),
        _f("min_length", I64),
        _f("max_length", I64),
        _f("pattern", S),
        _f("example", V),
        _msg("any_of", "Schema", repeated=True),
        _f("property_ordering", S, repeated=True),
        _f("default", V),
    ),
    "ToolConfig": (
        _msg("function_calling_config", "FunctionCallingConfig"),
        _f("retrieval_config", V),
        _f("include_server_side_tool_invocations", B),
    ),
    "FunctionCallingConfig": (
        _f("mode", Kind.ENUM, enum=FC_MODE),
        _f("allowed_function_names", S, repeated=True),
    ),
    "SafetySetting": (
        _f("category", Kind.ENUM, enum=HARM_CATEGORY),
        _f("threshold", Kind.ENUM, enum=HARM_THRESHOLD),
    ),
    "GenerationConfig": (
        _f("candidate_count", I32),
        _f("stop_sequences", S, repeated=True),
        _f("max_output_tokens", I32),
        _f("temperature", F),
        _f("top_p", F),
        _f("top_k", I32),
        _f("seed", I32),
        _f("presence_penalty", F),
        _f("frequency_penalty", F),
        _f("response_logprobs", B),
        _f("logprobs", I32),
        _f("response_mime_type", S),
        _msg("response_schema", "Schema"),
        # v1beta quirk: field #24 is json_name "_responseJsonSchema"; the name SDKs send,
        # "responseJsonSchema", belongs to field #28 (response_json_schema_ordered).
        _f("response_json_schema", V, json_name="_responseJsonSchema"),
        _f("response_json_schema_ordered", V, json_name="responseJsonSchema"),
        _f("response_modalities", Kind.ENUM, repeated=True, enum=MODALITY),
        _f("media_resolution", Kind.ENUM, enum=MEDIA_RESOLUTION),
        _msg("thinking_config", "ThinkingConfig"),
        _msg("speech_config", "SpeechConfig"),
        _msg("image_config", "ImageConfig"),
        _f("enable_enhanced_civic_answers", B),
        _f("audio_transcription_config", V),
    ),
    "ThinkingConfig": (
        _f("include_thoughts", B),
        _f("thinking_budget", I32),
        _f("thinking_level", Kind.ENUM, enum=THINKING_LEVEL),
    ),
    "SpeechConfig": (
        _msg("voice_config", "VoiceConfig"),
        _msg("multi_speaker_voice_config", "MultiSpeakerVoiceConfig"),
        _f("language_code", S),
    ),
    "VoiceConfig": (_msg("prebuilt_voice_config", "PrebuiltVoiceConfig"),),
    "PrebuiltVoiceConfig": (_f("voice_name", S),),
    "MultiSpeakerVoiceConfig": (
        _msg("speaker_voice_configs", "SpeakerVoiceConfig", repeated=True),
    ),
    "SpeakerVoiceConfig": (_f("speaker", S), _msg("voice_config", "VoiceConfig")),
    "ImageConfig": (_f("aspect_ratio", S), _f("image_size", S)),
}

_REGISTRY: Mapping[str, MessageType] = MappingProxyType(
    {f"{PACKAGE}.{name}": MessageType(f"{PACKAGE}.{name}", specs) for name, specs in _TABLE.items()}
)
# Full name → message, for readers resolving FieldSpec.message (always a full name) per field.
MESSAGE_TYPES: Mapping[str, MessageType] = _REGISTRY


def message_type(name: str) -> MessageType:
    """Look up a message by full name or by its short name ("Content")."""
    found = _REGISTRY.get(name)  # full names, as FieldSpec.message holds them, hit at once
    if found is None:
        found = _REGISTRY[name if name.startswith(PACKAGE) else f"{PACKAGE}.{name}"]
    return found


GENERATE_CONTENT_REQUEST = message_type("GenerateContentRequest")
COUNT_TOKENS_REQUEST = message_type("CountTokensRequest")
CACHED_CONTENT = message_type("CachedContent")
