"""The upstreams' own batch APIs, one class per provider kind that has one, behind one small
interface: submit a batch of requests already in the upstream's dialect, read how far it is,
fetch its results, cancel it. Built from a provider's settings when it says `batch: upstream`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from cometgate.dialects.anthropic.upstream_codec import AnthropicCodec
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions
from cometgate.dialects.batch_jobs import JobState, Outcome
from cometgate.dialects.gemini.upstream_errors import classify_error as gemini_error
from cometgate.dialects.openai.upstream_codec import OpenAICodec
from cometgate.dialects.upstream_codec import OutboundCodec
from cometgate.providers.anthropic_batch_api import AnthropicBatchApi
from cometgate.providers.batch_http import BatchHttp
from cometgate.providers.gemini_batch_api import GeminiBatchApi
from cometgate.providers.openai_batch_api import OpenAIBatchApi
from cometgate.providers.registry import openai_options
from cometgate.settings import (
    AnthropicProviderSettings,
    GeminiProviderSettings,
    OpenAIProviderSettings,
    ProviderSettings,
    Settings,
)

Entries = Sequence[tuple[str, dict[str, Any]]]  # (custom id, request in the upstream's dialect)


class UpstreamBatchApi(Protocol):
    kind: str
    # What writes a request for this upstream and reads its answers; None: the upstream
    # speaks Gemini, and the callers' requests go as they are.
    codec: OutboundCodec | None

    async def submit(self, upstream_model: str, display_name: str, entries: Entries,
                     headers: dict[str, str]) -> str:
        """The upstream's id of the new batch job."""
        ...

    async def state(self, upstream_id: str) -> JobState: ...

    async def outcomes(self, state: JobState) -> tuple[Outcome, ...]:
        """Every request's outcome of an ended job (those it has)."""
        ...

    async def cancel(self, upstream_id: str) -> None: ...

    async def aclose(self) -> None: ...


def build_batch_apis(settings: Settings) -> dict[str, UpstreamBatchApi]:
    """Provider name → its batch API, for every provider marked `batch: upstream`."""
    built = {spec.name: build_batch_api(spec) for spec in settings.providers}
    return {name: api for name, api in built.items() if api is not None}


def build_batch_api(spec: ProviderSettings) -> UpstreamBatchApi | None:
    """The batch API of a provider marked `batch: upstream`; None for any other."""
    remote = (GeminiProviderSettings, OpenAIProviderSettings, AnthropicProviderSettings)
    if not isinstance(spec, remote) or spec.batch != "upstream":
        return None
    key = spec.api_keys[0].value if spec.api_keys else None
    if isinstance(spec, GeminiProviderSettings):
        headers = {"x-goog-api-key": key} if key else {}
        return GeminiBatchApi(spec.base_url, BatchHttp(headers, spec.timeouts, gemini_error))
    if isinstance(spec, OpenAIProviderSettings):
        openai = OpenAICodec(openai_options(spec))
        return OpenAIBatchApi(spec.base_url, openai, BatchHttp(
            _auth(openai.headers(key, stream=False)), spec.timeouts, openai.classify_error))
    else:
        anthropic = AnthropicCodec(AnthropicOptions(
            version=spec.version, default_max_tokens=spec.default_max_tokens))
        return AnthropicBatchApi(spec.base_url, anthropic, BatchHttp(
            _auth(anthropic.headers(key, stream=False)), spec.timeouts,
            anthropic.classify_error))

def _auth(headers: dict[str, str]) -> dict[str, str]:
    """The codec's headers but its content type (each batch call sets its own)."""
    return {name: value for name, value in headers.items() if name != "content-type"}
