"""Settings: one frozen tree (tree.py), loaded once (load.py) from the embedded defaults, an
optional YAML file and the environment, then passed explicitly to whatever needs it.

The modules form a chain with no cycle: fields (errors, secrets, typed reads) ← the section
modules that define their own dataclass (sections/batches, sections/files) ← tree ← the other
section parsers ← load. Nothing inside the package imports this file, which only re-exports
the public names so that `from cometgate.settings import X` reads the same everywhere.
"""

from cometgate.settings.fields import ConfigError, Secret
from cometgate.settings.load import TOP_LEVEL_KEYS, default_data_dir, load_settings
from cometgate.settings.sections.batches import BatchSettings
from cometgate.settings.sections.files import FileSettings
from cometgate.settings.tree import (
    BATCH_PRICE_FACTOR,
    BATCH_ROUTES,
    BATCH_TIER,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CANDIDATES,
    AnthropicProviderSettings,
    CandidateSettings,
    ConversationSettings,
    FetchSettings,
    GeminiProviderSettings,
    LimitsSettings,
    LocalEmbeddingProviderSettings,
    LocalProviderSettings,
    ModelSettings,
    OpenAIProviderSettings,
    PriceVersion,
    ProviderSettings,
    RoutingSettings,
    SearchBackendSettings,
    ServerSettings,
    Settings,
    TelemetrySettings,
    UsageRetentionSettings,
)

__all__ = [
    "BATCH_PRICE_FACTOR",
    "BATCH_ROUTES",
    "BATCH_TIER",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CANDIDATES",
    "TOP_LEVEL_KEYS",
    "AnthropicProviderSettings",
    "BatchSettings",
    "CandidateSettings",
    "ConfigError",
    "ConversationSettings",
    "FetchSettings",
    "FileSettings",
    "GeminiProviderSettings",
    "LimitsSettings",
    "LocalEmbeddingProviderSettings",
    "LocalProviderSettings",
    "ModelSettings",
    "OpenAIProviderSettings",
    "PriceVersion",
    "ProviderSettings",
    "RoutingSettings",
    "SearchBackendSettings",
    "Secret",
    "ServerSettings",
    "Settings",
    "TelemetrySettings",
    "UsageRetentionSettings",
    "default_data_dir",
    "load_settings",
]
