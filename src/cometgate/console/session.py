"""Console sessions: a random token in an HttpOnly cookie, known to this process only.

The cookie holds 256 random bits and nothing else; the store keeps the SHA-256 of each token
(a memory dump does not hand out live cookies) with the session's CSRF token and its expiry.
Sessions slide: each use moves the expiry `lifetime` ahead, so an operator at work stays in
and an abandoned tab is out after `lifetime` idle. Signing out forgets the session at once.

Sessions live in the process that issued them (a gateway restart, or another replica, asks
for the admin key again): nothing needs sharing, and nothing outlives a key change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE_NAME = "cometgate_console"
LIFETIME_SECONDS = 30 * 60
# Far above one operator's tabs; bounds the memory repeated sign-ins can take.
MAX_SESSIONS = 1000
_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    csrf_token: str  # sent back in every state-changing form or request

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode(), self.csrf_token.encode())


@dataclass(slots=True)
class SessionStore:
    lifetime: float = LIFETIME_SECONDS
    clock: Callable[[], float] = time.monotonic
    capacity: int = MAX_SESSIONS
    # digest of the cookie token → (session, expiry); oldest use first, for eviction
    _sessions: OrderedDict[str, tuple[Session, float]] = field(default_factory=OrderedDict)

    def open(self) -> tuple[str, Session]:
        """A new session; returns the cookie token (not stored) and the session."""
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        session = Session(csrf_token=secrets.token_urlsafe(_TOKEN_BYTES))
        self._sessions[_digest(token)] = (session, self.clock() + self.lifetime)
        while len(self._sessions) > self.capacity:
            self._sessions.popitem(last=False)
        return token, session

    def touch(self, token: str | None) -> Session | None:
        """The live session of this cookie token, its expiry moved ahead; None otherwise."""
        if not token:
            return None
        digest = _digest(token)
        entry = self._sessions.get(digest)
        if entry is None:
            return None
        session, expiry = entry
        now = self.clock()
        if expiry <= now:
            del self._sessions[digest]
            return None
        self._sessions[digest] = (session, now + self.lifetime)
        self._sessions.move_to_end(digest)
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
