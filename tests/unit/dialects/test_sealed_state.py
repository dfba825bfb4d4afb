"""Sealed state: what one secret seals only that secret opens, and any change is refused."""

from __future__ import annotations

import base64

import pytest

from cometgate.dialects.sealed_state import SealedStateError, StateSeal

SECRET = b"0123456789abcdef0123456789abcdef"
PURPOSE = "reasoning"


def _raw(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("plaintext", [b"", b"x", b'{"parts":[["thinking", "c2ln"]]}' * 100])
def test_round_trip(plaintext: bytes) -> None:
    seal = StateSeal(SECRET)
    token = seal.seal(plaintext, purpose=PURPOSE)
    assert seal.open(token, purpose=PURPOSE) == plaintext
    # Another instance with the same secret (another replica) opens it too.
    assert StateSeal(SECRET).open(token, purpose=PURPOSE) == plaintext


def test_tokens_are_url_safe_text_that_hides_the_plaintext() -> None:
    token = StateSeal(SECRET).seal(b"the secret reasoning", purpose=PURPOSE)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert b"secret" not in _raw(token)


def test_each_seal_uses_a_fresh_nonce() -> None:
    seal = StateSeal(SECRET)
    assert seal.seal(b"same", purpose=PURPOSE) != seal.seal(b"same", purpose=PURPOSE)


def test_every_flipped_bit_is_refused() -> None:
    seal = StateSeal(SECRET)
    token = seal.seal(b"state", purpose=PURPOSE)
    raw = _raw(token)
    for position in range(len(raw)):
        for bit in (0x01, 0x80):
            changed = bytearray(raw)
            changed[position] ^= bit
            with pytest.raises(SealedStateError):
                seal.open(_token(bytes(changed)), purpose=PURPOSE)


def test_another_secret_cannot_open_it() -> None:
    token = StateSeal(SECRET).seal(b"state", purpose=PURPOSE)
    with pytest.raises(SealedStateError, match="changed, or sealed by another gateway secret"):
        StateSeal(b"another secret of enough length").open(token, purpose=PURPOSE)


def test_a_token_sealed_for_another_purpose_is_refused() -> None:
    seal = StateSeal(SECRET)
    with pytest.raises(SealedStateError):
        seal.open(seal.seal(b"state", purpose="other"), purpose=PURPOSE)


@pytest.mark.parametrize("keep", [0, 1, 12, 28, -1])
def test_truncated_tokens_are_refused(keep: int) -> None:
    seal = StateSeal(SECRET)
    raw = _raw(seal.seal(b"state", purpose=PURPOSE))
    with pytest.raises(SealedStateError):
        seal.open(_token(bytes(raw[:keep])), purpose=PURPOSE)


@pytest.mark.parametrize("token", ["not base64!", "é", "A", "gAAAAABlZ2FybGVk"])
def test_text_that_is_not_a_sealed_token_is_refused(token: str) -> None:
    with pytest.raises(SealedStateError):
        StateSeal(SECRET).open(token, purpose=PURPOSE)


def test_an_unknown_version_is_refused_by_name() -> None:
    seal = StateSeal(SECRET)
    raw = _raw(seal.seal(b"state", purpose=PURPOSE))
    raw[0] = 2
    with pytest.raises(SealedStateError, match="known version"):
        seal.open(_token(bytes(raw)), purpose=PURPOSE)


def test_a_short_secret_is_refused_and_the_seal_never_shows_it() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        StateSeal(b"short")
    assert "0123" not in repr(StateSeal(SECRET))
