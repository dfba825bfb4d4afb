"""What every section parser reads with: the error it raises, the secret it resolves, and typed
reads from one config mapping whose errors name the offending key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A resolved secret that refuses to show itself. `source` ("env:NAME") is its public id."""

    value: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Secret({self.source or 'inline'}, ***)"


def section(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{name}' must be a mapping")
    return value


class Fields:
    """Typed reads from one config mapping."""

    def __init__(self, where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping")
        unknown = set(data) - allowed
        if unknown:
            raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        self.where, self.data = where, data

    def get(self, key: str, kind: type[Any], default: Any = None) -> Any:
        value = self.data.get(key, default)
        if value is None or (isinstance(value, kind) and not (
            kind in (int, float) and isinstance(value, bool)
        )):
            return value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{self.where}.{key} must be of type {kind.__name__}")

    def require(self, key: str, kind: type[Any]) -> Any:
        value = self.get(key, kind)
        if value is None:
            raise ConfigError(f"{self.where}.{key} is required")
        return value

    def positive(self, key: str, kind: type[Any], default: Any) -> Any:
        value = self.get(key, kind, default)
        if value is not None and value < 0:
            raise ConfigError(f"{self.where}.{key} must not be negative")
        return value


def secret(where: str, value: Any, env: Mapping[str, str]) -> Secret:
    if not isinstance(value, str) or not value.startswith("env:"):
        raise ConfigError(f"{where} must reference the environment as 'env:NAME'; "
                          "secrets are never written into config files")
    name = value.removeprefix("env:")
    if name not in env:
        raise ConfigError(f"{where} references environment variable {name}, which is not set")
    return Secret(env[name], source=value)
