"""cachedContents on the wire: reading create and update bodies (Google's wording for what it
refuses), rendering the resource, and applying a cache to a generateContent body."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cometgate.dialects.gemini.cached_content import (
    DEFAULT_TTL,
    cache_id_of,
    decode_create,
    decode_update,
    encode_cache,
    parse_duration,
    rfc3339,
    with_cached_prefix,
)
from cometgate.errors import InvalidRequest, PermissionDenied

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
TURN = {"role": "user", "parts": [{"text": "a handbook"}]}


def test_a_create_body_in_either_spelling() -> None:
    draft = decode_create({"model": "models/m", "display_name": "d", "contents": [TURN],
                           "system_instruction": {"parts": [{"text": "be brief"}]},
                           "ttl": "90.5s"}, NOW)
    assert (draft.model, draft.display_name) == ("m", "d")
    assert draft.prefix == {"contents": [TURN],
                            "systemInstruction": {"parts": [{"text": "be brief"}]}}
    assert draft.expires_at == NOW + timedelta(seconds=90.5)


def test_without_ttl_or_expire_time_a_cache_lives_an_hour() -> None:
    assert decode_create({"model": "m", "contents": [TURN]}, NOW).expires_at == NOW + DEFAULT_TTL
    at = decode_create({"model": "m", "expireTime": "2030-01-02T00:00:00+02:00"}, NOW)
    assert at.expires_at == datetime(2030, 1, 1, 22, tzinfo=UTC)


@pytest.mark.parametrize(("document", "message"), [
    ({"model": "m", "ttl": "5m"},
     "Invalid value at 'ttl' (type.googleapis.com/google.protobuf.Duration), \"5m\""),
    ({"model": "m", "ttl": "0s"}, "ttl must be positive."),
    ({"model": "m", "expireTime": "2030-01-01"},
     "Invalid value at 'expire_time' (type.googleapis.com/google.protobuf.Timestamp), "
     "\"2030-01-01\""),
    ({"model": "m", "expireTime": "2030-01-01T00:00:00"},  # no zone: not RFC 3339
     "Invalid value at 'expire_time' (type.googleapis.com/google.protobuf.Timestamp), "
     "\"2030-01-01T00:00:00\""),
    ({"model": "m", "expireTime": "2029-12-31T00:00:00Z"}, "expire_time must be in the future."),
    ({"contents": [TURN]}, "Model name must be specified."),
])
def test_bad_creates(document: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_create(document, NOW)
    assert caught.value.message == message


def test_ttl_and_expire_time_are_one_of_a_kind() -> None:
    with pytest.raises(InvalidRequest):
        decode_create({"model": "m", "ttl": "5s", "expireTime": "2031-01-01T00:00:00Z"}, NOW)


def test_durations() -> None:
    assert parse_duration("3s", "ttl") == timedelta(seconds=3)
    assert parse_duration("0.000001s", "ttl") == timedelta(microseconds=1)
    assert parse_duration("-2s", "ttl") == timedelta(seconds=-2)


@pytest.mark.parametrize(("document", "mask", "expected"), [
    ({"ttl": "60s"}, None, NOW + timedelta(seconds=60)),
    ({"ttl": "60s", "name": "cachedContents/x"}, None, NOW + timedelta(seconds=60)),
    ({"expireTime": "2030-02-01T00:00:00Z"}, "expireTime",
     datetime(2030, 2, 1, tzinfo=UTC)),
    ({"expire_time": "2030-02-01T00:00:00Z"}, "expire_time",
     datetime(2030, 2, 1, tzinfo=UTC)),
])
def test_updates_of_the_expiry(document: dict[str, Any], mask: str | None,
                               expected: datetime) -> None:
    assert decode_update(document, mask, NOW) == expected


@pytest.mark.parametrize(("document", "mask"), [
    ({"displayName": "x"}, None),
    ({"ttl": "60s"}, "ttl,displayName"),
    ({}, None),
    ({"contents": [TURN]}, "contents"),
])
def test_updates_of_anything_else_are_refused(document: dict[str, Any], mask: str | None
                                              ) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_update(document, mask, NOW)
    assert caught.value.message.startswith("CachedContent update can only change ttl or "
                                           "expire_time")


def test_the_resource_as_google_renders_it() -> None:
    made = datetime(2030, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert encode_cache(cache_id="abc", model="m", display_name=None, total_tokens=9,
                        created_at=made, updated_at=made, expires_at=NOW + DEFAULT_TTL) == {
        "name": "cachedContents/abc", "model": "models/m",
        "createTime": "2030-01-01T12:00:00.25Z", "updateTime": "2030-01-01T12:00:00.25Z",
        "expireTime": "2030-01-01T13:00:00Z", "usageMetadata": {"totalTokenCount": 9}}
    assert rfc3339(NOW) == "2030-01-01T12:00:00Z"


@pytest.mark.parametrize("name", ["abc", "cachedContents/", "cachedContents/a/b", "files/abc"])
def test_names_that_name_no_cache(name: str) -> None:
    with pytest.raises(PermissionDenied):
        cache_id_of(name)


def test_the_prefix_goes_in_front_and_the_reference_goes() -> None:
    prefix = {"contents": [TURN], "systemInstruction": {"parts": [{"text": "s"}]},
              "tools": [{"functionDeclarations": [{"name": "f"}]}],
              "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}}
    question = {"role": "user", "parts": [{"text": "q"}]}
    merged = with_cached_prefix({"cached_content": "cachedContents/x", "contents": [question],
                                 "generationConfig": {"temperature": 0}}, prefix)
    assert merged == {**prefix, "contents": [TURN, question],
                      "generationConfig": {"temperature": 0}}


@pytest.mark.parametrize("field", ["systemInstruction", "system_instruction", "tools",
                                   "toolConfig", "tool_config"])
def test_a_request_setting_its_own_prefix_fields_is_refused(field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        with_cached_prefix({"cachedContent": "cachedContents/x", field: {}}, {})
    assert caught.value.message.startswith("CachedContent can not be used with "
                                           "GenerateContent request setting system_instruction")
