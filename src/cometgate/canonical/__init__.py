"""Our own model of a generation, independent of any vendor's dialect.

Frozen value types, no I/O, and no imports from the rest of the package: every dialect
translates to and from these, so nothing a dialect cannot say leaks into another.
"""

from cometgate.canonical.embeddings import EmbedInput, EmbedRequest, EmbedResponse
from cometgate.canonical.grounding import Citation, Grounding, Page
from cometgate.canonical.messages import (
    JSON,
    BlobPart,
    CodeOutcome,
    CodePart,
    CodeResultPart,
    FileRefPart,
    Message,
    Part,
    ReasoningPart,
    Role,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from cometgate.canonical.models import ModelInfo, ThinkingStyle
from cometgate.canonical.request import (
    FunctionTool,
    GenerateRequest,
    GenerationParams,
    OutputFormat,
    PromptCache,
    ThinkingConfig,
    ToolChoice,
    ToolMode,
    Untranslated,
    WebSearchTool,
)
from cometgate.canonical.response import (
    Candidate,
    FinishReason,
    GenerateResponse,
    TokenLogprob,
    Usage,
)
from cometgate.canonical.stream import (
    CandidateFinished,
    PartDelta,
    StreamEvent,
    StreamStarted,
    StreamUsage,
    UsageReported,
)
from cometgate.canonical.url_context import UrlMetadata, UrlRetrieval

__all__ = [
    "JSON",
    "BlobPart",
    "Candidate",
    "CandidateFinished",
    "Citation",
    "CodeOutcome",
    "CodePart",
    "CodeResultPart",
    "EmbedInput",
    "EmbedRequest",
    "EmbedResponse",
    "FileRefPart",
    "FinishReason",
    "FunctionTool",
    "GenerateRequest",
    "GenerateResponse",
    "GenerationParams",
    "Grounding",
    "Message",
    "ModelInfo",
    "OutputFormat",
    "Page",
    "Part",
    "PartDelta",
    "PromptCache",
    "ReasoningPart",
    "Role",
    "StreamEvent",
    "StreamStarted",
    "StreamUsage",
    "TextPart",
    "ThinkingConfig",
    "ThinkingStyle",
    "TokenLogprob",
    "ToolCallPart",
    "ToolChoice",
    "ToolMode",
    "ToolResultPart",
    "Untranslated",
    "UrlMetadata",
    "UrlRetrieval",
    "Usage",
    "UsageReported",
    "WebSearchTool",
]
