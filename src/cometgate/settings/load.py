"""Loading the settings once from the embedded defaults, an optional YAML file and the
environment.

This module and the section parsers (sections/) are the only ones that read the environment.
Secrets appear in config files only as references (`env:NAME`) and are resolved there; their
values never reach a repr or a log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cometgate.settings.fields import ConfigError, Secret, section
from cometgate.settings.sections import (
    batches,
    core,
    files,
    grounding,
    providers,
    search,
    telemetry,
    usage,
)
from cometgate.settings.sections.code_execution import code_execution
from cometgate.settings.sections.providers import PROVIDER_KINDS, ProviderKind
from cometgate.settings.tree import Settings

TOP_LEVEL_KEYS = {"server", "storage", "providers", "models", "data_dir", "routing", "limits",
                  "grounding", "telemetry", "batches", "code_execution"}


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
    kinds: Mapping[str, ProviderKind] = PROVIDER_KINDS,
) -> Settings:
    """Explicit arguments beat the environment (COMETGATE_CONFIG, COMETGATE_DATA_DIR,
    COMETGATE_HOST, COMETGATE_PORT, COMETGATE_DATABASE_URL, COMETGATE_REDIS_URL), which beats
    the file, which beats the embedded defaults. COMETGATE_ADMIN_KEY enables /admin/;
    COMETGATE_SECRET (shared by replicas) replaces the secret kept in the data directory.
    `kinds`: the provider kinds the `providers` section may name."""
    env = os.environ if env is None else env
    if config_path is None and env.get("COMETGATE_CONFIG"):
        config_path = Path(env["COMETGATE_CONFIG"])
    raw = _merged_config(config_path)
    chosen_dir = data_dir or _env_path(env, "COMETGATE_DATA_DIR") or _config_path(raw, config_path)
    resolved_dir = (chosen_dir or default_data_dir(env)).expanduser().resolve()
    server = core.server(section(raw, "server"))
    server = replace(
        server,
        host=host or env.get("COMETGATE_HOST") or server.host,
        port=port if port is not None else int(env.get("COMETGATE_PORT") or server.port),
    )
    configured = tuple(
        providers.provider(name, spec, env, kinds)
        for name, spec in section(raw, "providers").items()
    )
    models = tuple(core.model(n, v) for n, v in section(raw, "models").items())
    core.check_references(configured, models, kinds)
    storage = section(raw, "storage")
    url = env.get("COMETGATE_DATABASE_URL") or storage.get("url")
    if url is not None and not isinstance(url, str):
        raise ConfigError("storage.url must be a string")
    database_url = url or f"sqlite+aiosqlite:///{resolved_dir / 'cometgate.db'}"
    admin = env.get("COMETGATE_ADMIN_KEY")
    state_secret = env.get("COMETGATE_SECRET")
    return Settings(
        data_dir=resolved_dir,
        database_url=database_url,
        server=server,
        routing=core.routing(section(raw, "routing")),
        limits=core.limits(section(raw, "limits"), env),
        conversations=core.conversations(storage.get("conversations")),
        batches=batches.batches(raw.get("batches")),
        files=files.files(storage.get("files")),
        usage=usage.usage_retention(storage.get("usage")),
        telemetry=telemetry.telemetry(section(raw, "telemetry"), env),
        code_execution=code_execution(raw.get("code_execution")),
        state_secret=Secret(state_secret, source="env:COMETGATE_SECRET") if state_secret
        else None,
        admin_key=Secret(admin, source="env:COMETGATE_ADMIN_KEY") if admin else None,
        providers=configured,
        models=models,
        config_path=config_path,
        search=search.search_backend(section(raw, "grounding").get("search"), env),
        fetch=grounding.fetch(section(raw, "grounding")),
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
    unknown = set(loaded) - TOP_LEVEL_KEYS
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
