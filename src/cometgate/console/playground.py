"""The Playground: a chat page whose browser script calls the gateway's own model routes
(/v1/chat/completions, Gemini's :streamGenerateContent, /v1/messages) with a key the operator
pastes or makes here, so the key's limits and usage records apply as to any caller.

The key lives in the page's memory only (never in storage, a cookie or a URL). A temporary
key is a normal key, named `playground-…`, that expires after TEMPORARY_KEY_LIFETIME.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cometgate.console.rendering import render
from cometgate.console.session import Session
from cometgate.settings import Settings
from cometgate.storage.keys import KeyRepository

TEMPORARY_KEY_LIFETIME = timedelta(hours=1)
DIALECTS = ("openai", "gemini", "anthropic")


@dataclass(frozen=True, slots=True)
class Playground:
    settings: Settings
    keys: KeyRepository

    async def page(self, request: Request, session: Session) -> Response:
        models = [m.info.id for m in self.settings.models
                  if "generateContent" in m.info.generation_methods]
        return render("playground.html", session, models=models, dialects=DIALECTS)

    async def temporary_key(self, request: Request, session: Session) -> Response:
        """A key for this playground session: the one response, besides key creation and
        rotation, that carries a plaintext key."""
        expires = datetime.now(UTC) + TEMPORARY_KEY_LIFETIME
        record, key = await self.keys.create(f"playground-{secrets.token_hex(4)}",
                                             expires_at=expires)
        body = {"key": key, "id": record.id, "name": record.name, "prefix": record.prefix,
                "expires_at": expires.isoformat()}
        return Response(orjson.dumps(body), status_code=201, media_type="application/json")
