"""Opaque state handed to a caller sealed, so that it comes back unread and unchanged.

A stateless caller (a Responses API client with `store: false`, Codex) carries the upstream's
reasoning state between turns in `encrypted_content`. What the gateway puts there is sealed
with AES-256-GCM under a key derived (HKDF-SHA256) from the gateway secret, so the caller can
neither read it nor change it, and every replica sharing the secret can open it.

Token layout, before unpadded URL-safe base64:
    version (1 byte, 0x01) | nonce (12 random bytes) | ciphertext | GCM tag (16 bytes)
The version byte and a `purpose` label are the associated data: a token sealed for one use
cannot be opened as another, and a later format can be told apart.

Pure computation, no I/O: the secret is given by whoever holds it (see gateway_secret).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_INFO = b"cometgate sealed state v1"
MIN_SECRET_BYTES = 16


class SealedStateError(ValueError):
    """A token that this gateway did not seal, or that was changed since."""


class StateSeal:
    """Seals and opens tokens under one gateway secret."""

    __slots__ = ("_aead",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the gateway secret must be at least {MIN_SECRET_BYTES} bytes")
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO)
        self._aead = AESGCM(kdf.derive(secret))

    def __repr__(self) -> str:
        return "StateSeal(***)"

    def seal(self, plaintext: bytes, *, purpose: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, _associated(purpose))
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str, *, purpose: str) -> bytes:
        """The plaintext; SealedStateError for anything not sealed by this secret as is."""
        raw = _decoded(token)
        if len(raw) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise SealedStateError("the token is too short to be sealed state")
        if raw[:1] != _VERSION:
            raise SealedStateError("the token is not sealed state of a known version")
        nonce, sealed = raw[1:1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, _associated(purpose))
        except InvalidTag:
            raise SealedStateError(
                "the token was changed, or sealed by another gateway secret"
            ) from None


def _associated(purpose: str) -> bytes:
    return _VERSION + purpose.encode("utf-8")


def _decoded(token: str) -> bytes:
    if not isinstance(token, str) or not token.isascii():
        raise SealedStateError("the token is not URL-safe base64 text")
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise SealedStateError("the token is not URL-safe base64 text") from None
