"""Providers built from configuration: most upstreams are data, not code.

Each provider kind's record (settings/sections/providers.py) names its builder here; building
looks the record up by the settings' class and calls that builder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from cometgate.dialects.anthropic.upstream_request import AnthropicOptions
from cometgate.dialects.openai.upstream_request import OpenAIOptions
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
    ProviderSettings,
    Settings,
)
from cometgate.settings.sections.providers import PROVIDER_KINDS, ProviderKind, kind_of


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a builder may need beyond its own settings: what this process shares with its
    siblings under `serve --workers N`."""

    shared_local: Mapping[str, SharedWorker] = field(default_factory=dict)


Builder = Callable[[ProviderSettings, Settings, BuildContext], Provider]


def build_providers(
    settings: Settings,
    kinds: Mapping[str, ProviderKind] = PROVIDER_KINDS,
    *,
    shared_local: Mapping[str, SharedWorker] | None = None,
) -> dict[str, Provider]:
    """`shared_local`: local models another process supervises, by provider name."""
    context = BuildContext(shared_local or {})
    return {spec.name: builder(kind_of(spec, kinds))(spec, settings, context)
            for spec in settings.providers}


def builder(kind: ProviderKind) -> Builder:
    """The function the record names; a name that leads nowhere is a fault of the record."""
    module, _, name = kind.builder.partition(":")
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError as exc:
        raise LookupError(f"provider kind {kind.name!r}: cannot import {module}: {exc}") from exc
    if not callable(found):
        raise LookupError(f"provider kind {kind.name!r}: {kind.builder} is not a function")
    # Called only with the settings class the same record parses into.
    return cast(Builder, found)


def build_local(spec: LocalProviderSettings, settings: Settings,
                context: BuildContext) -> Provider:
    return local_provider(settings, spec, context.shared_local.get(spec.name))


def build_openai(
    spec: OpenAIProviderSettings, settings: Settings, context: BuildContext
) -> Provider:
    return http_provider(
        spec.name,
        base_url=spec.base_url,
        api_key=spec.api_keys[0].value if spec.api_keys else None,
        options=openai_options(spec),
        timeouts=spec.timeouts,
    )


def build_anthropic(
    spec: AnthropicProviderSettings, settings: Settings, context: BuildContext
) -> Provider:
    return AnthropicUpstream(
        spec.name,
        base_url=spec.base_url,  # the server root; the codec adds /v1/messages
        api_key=spec.api_keys[0].value if spec.api_keys else None,
        options=AnthropicOptions(
            version=spec.version, default_max_tokens=spec.default_max_tokens),
        timeouts=spec.timeouts,
    )


def build_local_embedding(
    spec: LocalEmbeddingProviderSettings, settings: Settings, context: BuildContext
) -> Provider:
    # Imported only when configured: numpy and onnxruntime cost memory at import.
    from cometgate.providers.local.embedder import LocalEmbeddingProvider

    return LocalEmbeddingProvider(spec.name, threads=spec.threads)


def build_gemini(
    spec: GeminiProviderSettings, settings: Settings, context: BuildContext
) -> Provider:
    # Credentials come with each attempt (rotated by the planner), so none here.
    return GeminiProvider(spec.name, base_url=spec.base_url, api_key=None, timeouts=spec.timeouts)


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
