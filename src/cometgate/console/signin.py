"""Signing in with the admin key, and out.

The admin key is compared in constant time (through digests, as the admin API does). A user
API key typed into the form is refused and told so, not treated as a wrong admin key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cometgate.api.admin_routes import same_secret
from cometgate.console.guard import SIGN_IN_PATH, keep_cookie, same_origin
from cometgate.console.rendering import render
from cometgate.console.session import COOKIE_NAME, Session, SessionStore
from cometgate.console.throttle import SignInThrottle
from cometgate.settings import Secret
from cometgate.storage.keys import KeyRepository

HOME = "/console/keys"
MAX_KEY_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class SignIn:
    admin_key: Secret
    sessions: SessionStore
    keys: KeyRepository
    throttle: SignInThrottle = field(default_factory=SignInThrottle)

    async def form(self, request: Request) -> Response:
        if self.sessions.touch(request.cookies.get(COOKIE_NAME)) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        return render("signin.html", None, next=safe_next(request.query_params.get("next")),
                      error=None)

    async def submit(self, request: Request) -> Response:
        form = await request.form()
        presented = form.get("admin_key")
        sent_next = form.get("next")
        target = safe_next(sent_next if isinstance(sent_next, str) else None)
        if not same_origin(request):
            return self._refused(403, "Sign-in must come from the console's own page.", target)
        address = request.client.host if request.client else ""
        wait = self.throttle.wait(address)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            response = self._refused(429, "Too many failed sign-ins from this address; try "
                                     f"again in {seconds} s.", target)
            response.headers["retry-after"] = str(seconds)
            return response
        if not isinstance(presented, str) or not presented.strip():
            return self._refused(401, "Type the admin key.", target)
        presented = presented.strip()[:MAX_KEY_LENGTH]
        if not same_secret(presented, self.admin_key.value):
            self.throttle.failed(address)
            if await self.keys.authenticate(presented) is not None:
                return self._refused(403, "This is an API key for model calls; the console "
                                     "needs the admin key (COMETGATE_ADMIN_KEY).", target)
            return self._refused(401, "The admin key is not valid.", target)
        self.throttle.succeeded(address)
        token, _ = self.sessions.open()
        response = RedirectResponse(target, status_code=303)
        keep_cookie(response, request, token, self.sessions.lifetime)
        return response

    async def sign_out(self, request: Request, session: Session) -> Response:
        self.sessions.close(request.cookies.get(COOKIE_NAME))
        response = RedirectResponse(SIGN_IN_PATH, status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/console", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    def _refused(self, status: int, message: str, target: str) -> Response:
        return render("signin.html", None, status=status, next=target, error=message)


def safe_next(target: str | None) -> str:
    """Only a console path: `next` must never send the operator to another site."""
    if (not target or not target.startswith("/console/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 0x20 for c in target)):
        return HOME
    return target
