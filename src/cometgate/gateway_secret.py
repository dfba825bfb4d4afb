"""The gateway secret that seals opaque state (see dialects/sealed_state): from the environment
(COMETGATE_SECRET, what several replicas share) or a file in the data directory, made on first
start with mode 0600.

The file is written whole under a temporary name and then linked into place, so two processes
starting together on a fresh data directory agree on one secret: the second link fails and that
process reads the winner's file, never a half-written one.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cometgate.settings import Settings

SECRET_FILENAME = "secret"
_RANDOM_BYTES = 32


def gateway_secret(settings: Settings) -> bytes:
    if settings.state_secret is not None:
        return settings.state_secret.value.encode("utf-8")
    return secret_from_file(settings.data_dir / SECRET_FILENAME)


def secret_from_file(path: Path) -> bytes:
    """The secret in `path`, made first if the file does not exist."""
    if not path.exists():
        _create(path)
    text = path.read_text(encoding="ascii").strip()
    if not text:
        raise ValueError(f"{path} is empty; delete it to have a new secret made")
    return text.encode("ascii")


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    text = base64.urlsafe_b64encode(secrets.token_bytes(_RANDOM_BYTES)).decode("ascii") + "\n"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first; its secret is the one
    finally:
        temporary.unlink(missing_ok=True)
