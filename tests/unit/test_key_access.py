"""The one key-access rule: every caller of it (authentication, admission, token counts,
stored responses, the models listing) refuses the same keys with the same words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cometgate.errors import ApiKeyExpired, ApiKeyInvalid, GatewayError, PermissionDenied
from cometgate.key_access import check_access, check_key, check_origin
from cometgate.storage.keys import KeyRecord

NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
KEY = KeyRecord(id=1, name="k", prefix="cg-AbCd1234", created_at=NOW - timedelta(days=1),
                revoked_at=None)
EXPIRED = "API key expired. Please renew the API key."
INVALID = "API key not valid. Please pass a valid API key."


def _refusal(key: KeyRecord, model: str = "m", client_ip: str | None = "10.0.0.1"
             ) -> tuple[type[GatewayError], str] | None:
    try:
        check_access(key, model, client_ip, NOW)
    except GatewayError as exc:
        return type(exc), str(exc)
    return None


def test_an_unrestricted_key_may_call_anything_from_anywhere() -> None:
    assert _refusal(KEY) is None
    assert _refusal(KEY, client_ip=None) is None


def test_a_revoked_key_is_invalid_everywhere_not_only_at_authentication() -> None:
    revoked = replace(KEY, revoked_at=NOW - timedelta(seconds=1))
    assert _refusal(revoked) == (ApiKeyInvalid, INVALID)
    with pytest.raises(ApiKeyInvalid):
        check_key(revoked, NOW)


@pytest.mark.parametrize(("expires", "refused"), [
    (NOW, True),  # at the instant of expiry the key is already expired
    (NOW - timedelta(seconds=1), True),
    (NOW + timedelta(seconds=1), False),
])
def test_expiry(expires: datetime, refused: bool) -> None:
    key = replace(KEY, expires_at=expires)
    assert _refusal(key) == ((ApiKeyExpired, EXPIRED) if refused else None)


def test_revocation_outranks_expiry() -> None:
    both = replace(KEY, revoked_at=NOW, expires_at=NOW - timedelta(days=1))
    assert _refusal(both) == (ApiKeyInvalid, INVALID)


@pytest.mark.parametrize(("address", "allowed"), [
    ("10.200.0.1", True),
    ("2001:db8::7", True),
    ("::ffff:10.1.2.3", True),  # an IPv4 client on a dual-stack socket
    ("::ffff:192.168.0.1", False),
    ("192.168.0.1", False),
    (None, False),  # an address the gateway cannot tell is in no range
    ("not an address", False),
])
def test_client_address(address: str | None, allowed: bool) -> None:
    key = replace(KEY, allowed_ips=("10.0.0.0/8", "2001:db8::/32"))
    expected = None if allowed else (
        PermissionDenied,
        f"Requests from IP address {address or 'unknown'} are not allowed for this API key.")
    assert _refusal(key, client_ip=address) == expected
    assert key.allows_address(address) is allowed


def test_a_range_stored_with_host_bits_reads_as_its_network() -> None:
    # Ranges are normalised when stored; an older row must not turn into a 500.
    key = replace(KEY, allowed_ips=("10.0.0.1/8",))
    assert _refusal(key, client_ip="10.9.9.9") is None


@pytest.mark.parametrize(("model", "allowed"), [
    ("gemini-2.5-pro", True), ("smollm2", True), ("smollm2-x", False), ("GEMINI-2.5", False),
])
def test_models_by_name_or_glob_and_the_listing_agrees(model: str, allowed: bool) -> None:
    key = replace(KEY, allowed_models=("gemini-*", "smollm2"))
    expected = None if allowed else (
        PermissionDenied, f"This API key is not allowed to use models/{model}.")
    assert _refusal(key, model=model) == expected
    assert key.allows_model(model) is allowed


def test_check_origin_holds_the_rules_of_calls_that_name_no_model() -> None:
    key = replace(KEY, allowed_ips=("10.0.0.0/8",), allowed_models=("other",))
    check_origin(key, "10.1.1.1", NOW)  # no model named: the allow-list does not apply
    with pytest.raises(PermissionDenied):
        check_origin(key, "11.1.1.1", NOW)
    with pytest.raises(ApiKeyInvalid):
        check_origin(replace(key, revoked_at=NOW), "10.1.1.1", NOW)
