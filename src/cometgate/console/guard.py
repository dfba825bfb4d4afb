"""What stands in front of every console page: security headers, the session, CSRF.

- Every response under /console carries the headers below, errors and static files included
  (an ASGI layer around the console's own router, so nothing answers without them).
- A route answers only to a live session (session.py). Without one, a page read from a
  browser is sent to the sign-in page; anything else gets 401. A request that carries an API
  key (or the admin key as a header) instead is refused with 403: the console takes sessions
  only, so a leaked user key is never a way in.
- Every method but GET and HEAD changes state and must send the session's CSRF token, in the
  form field `csrf_token` or the `X-CSRF-Token` header (htmx and fetch), and, when the browser
  names an Origin, come from this origin. SameSite=Strict already keeps the cookie off
  cross-site requests; the token is the second lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cometgate.console.session import COOKIE_NAME, Session, SessionStore

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SIGN_IN_PATH = "/console/signin"
_READS = frozenset({"GET", "HEAD"})
_KEY_HEADERS = ("authorization", "x-goog-api-key", "x-api-key")

# 'self' only: scripts, styles and fetches come from /console/static and this origin; no inline
# script or style at all (the charts are SVG elements, styled by attributes and the CSS file).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Chrome send Origin: null
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
    (b"cache-control", b"no-store"),  # pages hold key prefixes and spend: keep them off disk
)

PageHandler = Callable[[Request, Session], Awaitable[Response]]


class SecurityHeaders:
    """ASGI layer that adds SECURITY_HEADERS to every response of the app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def guarded(sessions: SessionStore, by_method: Mapping[str, PageHandler]
            ) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that admits a live session, checks CSRF on state changes, then dispatches."""

    async def endpoint(request: Request) -> Response:
        session = sessions.touch(request.cookies.get(COOKIE_NAME))
        if session is None:
            return refusal(request)
        method = "GET" if request.method == "HEAD" else request.method
        handler = by_method.get(method)
        if handler is None:
            return error_response(405, f"Method {request.method} is not allowed here; use "
                                  f"{', '.join(by_method)}.", allow=", ".join(by_method))
        if method not in _READS and not await csrf_passes(request, session):
            return error_response(403, "The request's CSRF token is missing or wrong; reload "
                                  "the page and try again.")
        response = await handler(request, session)
        if "set-cookie" not in response.headers:  # sign-out clears it instead
            keep_cookie(response, request, request.cookies[COOKIE_NAME], sessions.lifetime)
        return response

    return endpoint


def refusal(request: Request) -> Response:
    """The answer to a request without a live session."""
    if any(request.headers.get(name) for name in _KEY_HEADERS):
        return error_response(403, "The console does not accept API keys or the admin key in "
                              "a header; sign in at /console/signin.")
    if request.method in _READS and "text/html" in request.headers.get("accept", "") \
            and "hx-request" not in request.headers:
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"{SIGN_IN_PATH}?next={target}", status_code=303)
    response = error_response(401, "Sign in to the console first.")
    response.headers["hx-redirect"] = SIGN_IN_PATH
    return response


async def csrf_passes(request: Request, session: Session) -> bool:
    if not same_origin(request):
        return False
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and _is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    return session.csrf_matches(presented)


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}"


def keep_cookie(response: Response, request: Request, token: str, lifetime: float) -> None:
    """(Re)sets the session cookie: HttpOnly, SameSite=Strict, Secure over TLS, and expiring
    with the session, so a closed browser does not keep a dead cookie for long."""
    response.set_cookie(COOKIE_NAME, token, max_age=int(lifetime), path="/console", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def error_response(status: int, message: str, *, allow: str | None = None) -> Response:
    names = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             405: "UNIMPLEMENTED"}
    body = {"error": {"code": status, "message": message, "status": names.get(status, "")}}
    response = Response(orjson.dumps(body), status_code=status, media_type="application/json")
    if allow is not None:
        response.headers["allow"] = allow
    return response


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
