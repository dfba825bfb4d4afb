"""Providers built from configuration: most upstreams are data, not code."""

from __future__ import annotations

from collections.abc import Mapping

from cometgate.dialects.anthropic.encode import AnthropicOptions
from cometgate.dialects.openai.outbound import OpenAIOptions
from cometgate.providers.anthropic_upstream import AnthropicUpstream
from cometgate.providers.base import Provider
from cometgate.providers.gemini import GeminiProvider
from cometgate.providers.local.provider import LocalProvider
from cometgate.providers.local.supervisor import SharedWorker
from cometgate.providers.openai_upstream import http_provider
from cometgate.settings import (
    AnthropicProviderSettings,
    GeminiProviderSettings,
    LocalEmbeddingProviderSettings,
    LocalProviderSettings,
    OpenAIProviderSettings,
    Settings,
)


def build_providers(
    settings: Settings, *, shared_local: Mapping[str, SharedWorker] | None = None
) -> dict[str, Provider]:
    """`shared_local`: local models another process supervises, by provider name."""
    built: dict[str, Provider] = {}
    for spec in settings.providers:
        if isinstance(spec, LocalProviderSettings):
            built[spec.name] = local_provider(
                settings, spec, (shared_local or {}).get(spec.name))
        elif isinstance(spec, OpenAIProviderSettings):
            built[spec.name] = http_provider(
                spec.name,
                base_url=spec.base_url,
                api_key=spec.api_keys[0].value if spec.api_keys else None,
                options=openai_options(spec),
                timeouts=spec.timeouts,
            )
        elif isinstance(spec, AnthropicProviderSettings):
            built[spec.name] = AnthropicUpstream(
                spec.name,
                base_url=spec.base_url,  # the server root; the codec adds /v1/messages
                api_key=spec.api_keys[0].value if spec.api_keys else None,
                options=AnthropicOptions(
                    version=spec.version, default_max_tokens=spec.default_max_tokens),
                timeouts=spec.timeouts,
            )
        elif isinstance(spec, LocalEmbeddingProviderSettings):
            # Imported only when configured: numpy and onnxruntime cost memory at import.
            from cometgate.providers.local.embedder import LocalEmbeddingProvider

            built[spec.name] = LocalEmbeddingProvider(spec.name, threads=spec.threads)
        elif isinstance(spec, GeminiProviderSettings):
            # Credentials come with each attempt (rotated by the planner), so none here.
            built[spec.name] = GeminiProvider(
                spec.name, base_url=spec.base_url, api_key=None, timeouts=spec.timeouts
            )
    return built


def local_provider(settings: Settings, spec: LocalProviderSettings,
                   shared: SharedWorker | None = None) -> LocalProvider:
    # The worker serves one model under the name the first model using it gives.
    names = [m.upstream_model for m in settings.models if m.provider == spec.name]
    return LocalProvider(spec, model_name=names[0] if names else spec.name, shared=shared)


def openai_options(spec: OpenAIProviderSettings) -> OpenAIOptions:
    return OpenAIOptions(
        accepts_top_k=spec.accepts_top_k,
        tokenize_endpoint=spec.tokenize_endpoint,
        responses_api=spec.responses_api,
        supports_reasoning=spec.supports_reasoning,
        max_tokens_field=(
            "max_completion_tokens" if spec.max_tokens_field == "max_completion_tokens"
            else "max_tokens"
        ),
        strict_schemas=spec.strict_schemas,
        web_search=spec.web_search,
    )
