"""The worker's loopback port answers only its supervisor.

Any local user or process can reach 127.0.0.1, so the supervisor makes a fresh token at each
start and hands it to the worker on its stdin (not argv, which `ps` shows to every user, nor
the environment); every request to the worker must carry it as `Authorization: Bearer`.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

REFUSAL = orjson.dumps({"error": {
    "message": "This worker answers only the gateway that started it.",
    "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})


class WorkerTokenGuard:
    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app = app
        self._digest = hashlib.sha256(token.encode()).digest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._admitted(scope):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(REFUSAL)).encode()),
        ]})
        await send({"type": "http.response.body", "body": REFUSAL})

    def _admitted(self, scope: Scope) -> bool:
        presented = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, presented = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    presented = b""
        # Digests compared, so the time taken says nothing about the token's length.
        return hmac.compare_digest(hashlib.sha256(presented.strip()).digest(), self._digest)
