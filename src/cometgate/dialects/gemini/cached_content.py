"""Gemini `cachedContents`: the wire side of a cached prompt prefix, as pure functions.

- `decode_create` / `decode_update` read a CachedContent body as Google's front end does
  (protojson first, then the resource's own rules), with Google's wording for what it refuses.
- `encode_cache` renders the resource as Google returns it: never its contents.
- `cache_reference` / `with_cached_prefix` apply a cache to a generateContent (or countTokens)
  body the way Google does: the cache's system instruction, tools and tool config become the
  request's, and its contents come before the request's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cometgate.dialects.gemini.protojson import invalid_value_message, parse, to_json
from cometgate.dialects.gemini.schema import CACHED_CONTENT
from cometgate.errors import InvalidRequest, PermissionDenied

NAME_PREFIX = "cachedContents/"
DEFAULT_TTL = timedelta(hours=1)  # Google's default when neither ttl nor expireTime is set
# The part of a cache a request takes over (the rest of CachedContent describes the resource).
PREFIX_FIELDS = ("contents", "systemInstruction", "tools", "toolConfig")
_DURATION = re.compile(r"^(-?)(\d+)(?:\.(\d{1,9}))?s$")
_DURATION_TYPE = "type.googleapis.com/google.protobuf.Duration"
_TIMESTAMP_TYPE = "type.googleapis.com/google.protobuf.Timestamp"
# What a request using a cache may not set itself (both spellings: protojson takes either).
_OWN_PREFIX_FIELDS = ("systemInstruction", "system_instruction", "tools", "toolConfig",
                      "tool_config")


@dataclass(frozen=True, slots=True)
class CacheDraft:
    model: str  # without "models/"
    display_name: str | None
    prefix: dict[str, Any]  # PREFIX_FIELDS present, in Google's canonical JSON
    expires_at: datetime


def decode_create(document: dict[str, Any], now: datetime) -> CacheDraft:
    normalised = parse(CACHED_CONTENT, document)
    model = str(normalised.get("model", ""))
    if not model:
        raise InvalidRequest("Model name must be specified.",
                             violations={"model": "model is required"})
    rendered = to_json(CACHED_CONTENT, normalised)
    prefix = {name: rendered[name] for name in PREFIX_FIELDS if name in rendered}
    return CacheDraft(
        model=model.removeprefix("models/"),
        display_name=normalised.get("display_name") or None,
        prefix=prefix,
        expires_at=expiry(normalised, now) or now + DEFAULT_TTL,
    )


def decode_update(document: dict[str, Any], update_mask: str | None, now: datetime
                  ) -> datetime:
    """The new expiry of a PATCH. Only the expiration can change, as on Google: an update
    mask (or, without one, a body) naming anything else is refused."""
    normalised = parse(CACHED_CONTENT, document)
    if update_mask is not None:
        named = [path.strip() for path in update_mask.split(",") if path.strip()]
    else:  # google-genai sends no mask: the fields in the body are the update
        named = [key for key in document if key != "name"]
    allowed = {"ttl", "expireTime", "expire_time"}
    forbidden = [path for path in named if path not in allowed]
    if forbidden or not named:
        raise InvalidRequest(
            "CachedContent update can only change ttl or expire_time; update_mask names "
            f"{', '.join(forbidden) or 'nothing'}.",
            violations={"update_mask": "only ttl and expire_time can be updated"})
    found = expiry(normalised, now)
    if found is None:
        raise InvalidRequest("ttl or expire_time must be set to update a CachedContent.",
                             violations={"ttl": "ttl or expire_time is required"})
    return found


def expiry(normalised: dict[str, Any], now: datetime) -> datetime | None:
    """The expiry `ttl` (from now) or `expire_time` gives, None when neither is set."""
    if "ttl" in normalised:
        ttl = parse_duration(str(normalised["ttl"]), "ttl")
        if ttl <= timedelta(0):
            raise InvalidRequest("ttl must be positive.", violations={"ttl": "must be positive"})
        return now + ttl
    if "expire_time" in normalised:
        at = parse_timestamp(str(normalised["expire_time"]), "expire_time")
        if at <= now:
            raise InvalidRequest("expire_time must be in the future.",
                                 violations={"expire_time": "must be in the future"})
        return at
    return None


def parse_duration(text: str, field: str) -> timedelta:
    """proto3 JSON Duration: seconds with up to nine fractional digits, then "s"."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidRequest(invalid_value_message(field, _DURATION_TYPE, text),
                             violations={field: "not a Duration"})
    sign, seconds, fraction = match.groups()
    value = timedelta(seconds=int(seconds), microseconds=int((fraction or "0").ljust(9, "0")[:6]))
    return -value if sign else value


def parse_timestamp(text: str, field: str) -> datetime:
    """proto3 JSON Timestamp: RFC 3339 with a "Z" or an offset."""
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        found = None
    if found is None or found.tzinfo is None or "T" not in text:
        raise InvalidRequest(invalid_value_message(field, _TIMESTAMP_TYPE, text),
                             violations={field: "not a Timestamp"})
    return found.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """Google's rendering: UTC, fractional seconds as needed, a "Z"."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def encode_cache(*, cache_id: str, model: str, display_name: str | None, total_tokens: int,
                 created_at: datetime, updated_at: datetime, expires_at: datetime
                 ) -> dict[str, Any]:
    document: dict[str, Any] = {"name": NAME_PREFIX + cache_id}
    if display_name:
        document["displayName"] = display_name
    document.update({
        "model": f"models/{model}",
        "createTime": rfc3339(created_at),
        "updateTime": rfc3339(updated_at),
        "expireTime": rfc3339(expires_at),
        "usageMetadata": {"totalTokenCount": total_tokens},
    })
    return document


def cache_id_of(name: str) -> str:
    """The id in "cachedContents/{id}"; anything else names no cache of this caller."""
    cache_id = name.removeprefix(NAME_PREFIX)
    if not name.startswith(NAME_PREFIX) or not cache_id or "/" in cache_id:
        raise not_found()
    return cache_id


def not_found() -> PermissionDenied:
    """Google's one answer for a cache that is missing, expired or another project's."""
    return PermissionDenied("CachedContent not found (or permission denied)")


def cache_reference(document: dict[str, Any]) -> str | None:
    """The `cachedContent` a generateContent body names (either spelling), if any."""
    found = document.get("cachedContent", document.get("cached_content"))
    return found if isinstance(found, str) and found else None


def with_cached_prefix(document: dict[str, Any], prefix: dict[str, Any]) -> dict[str, Any]:
    """The body as Google runs it: the cache's prefix in front, the reference gone. A body
    that sets its own system instruction, tools or tool config is refused, as Google does."""
    own = [key for key in _OWN_PREFIX_FIELDS if key in document]
    if own:
        raise InvalidRequest(
            "CachedContent can not be used with GenerateContent request setting "
            "system_instruction, tools or tool_config.\n\nProposed fix: move those values to "
            "CachedContent from GenerateContent request.",
            violations={own[0]: "not allowed together with cached_content"})
    merged = {key: value for key, value in document.items()
              if key not in ("cachedContent", "cached_content", "contents")}
    for field in ("systemInstruction", "tools", "toolConfig"):
        if field in prefix:
            merged[field] = prefix[field]
    own_contents = document.get("contents") or []
    merged["contents"] = [*prefix.get("contents", []),
                          *(own_contents if isinstance(own_contents, list) else [own_contents])]
    return merged


def model_mismatch(request_model: str, cache_model: str) -> InvalidRequest:
    return InvalidRequest(
        f"Model used by GenerateContent request (models/{request_model}) and CachedContent "
        f"(models/{cache_model}) has to be the same!",
        violations={"cached_content": "bound to another model"})


def too_small(total: int, minimum: int) -> InvalidRequest:
    return InvalidRequest(
        f"Cached content is too small. total_token_count={total}, "
        f"min_total_token_count={minimum}",
        violations={"contents": "too few tokens to cache"})
