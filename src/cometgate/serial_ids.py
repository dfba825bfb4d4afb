"""Ids unique to one process and across processes, without the system's random source per id:
a random prefix drawn once per process and a counter. 32 hex digits, like a uuid4's."""

from __future__ import annotations

import itertools
import secrets


class SerialIds:
    """80 random bits per process (as unique across workers and restarts as a uuid4 would be)
    followed by a 48-bit counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(10)
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:012x}"
