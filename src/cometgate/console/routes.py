"""The console under /console: its routes, wrapped in the security headers, behind sessions.

    /console/signin                 GET form · POST admin key → session cookie
    /console/signout                POST
    /console/keys                   GET list and search · POST create
    /console/keys/{id}              GET show and edit · POST save
    /console/keys/{id}/rotate       POST          /console/keys/{id}/revoke   POST
    /console/keys/{id}/delete       POST
    /console/usage                  GET chart and totals  · /console/usage.csv  GET
    /console/requests               GET recent records
    /console/models                 GET aliases, candidates, circuits
    /console/playground             GET · /console/playground/key POST (a temporary key)
    /console/static/…               the CSS, scripts and htmx (public: no secret in them)

Without an admin key in the settings there is no console: no route is added at all, so
/console answers as any unknown path does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router, request_response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from cometgate.console.guard import PageHandler, SecurityHeaders, error_response, guarded
from cometgate.console.keys_pages import KeyPages
from cometgate.console.models_page import ModelsPage
from cometgate.console.playground import Playground
from cometgate.console.requests_page import RequestsPage
from cometgate.console.session import SessionStore
from cometgate.console.signin import HOME, SignIn
from cometgate.console.usage_pages import UsagePages
from cometgate.routing.health import Health
from cometgate.settings import Settings
from cometgate.storage.database import Database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage_rollups import UsageRollups

STATIC = Path(__file__).parent / "static"
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def console_routes(settings: Settings, database: Database, usage: UsageRollups, health: Health,
                   sessions: SessionStore | None = None) -> list[BaseRoute]:
    """The /console mount, or nothing when no admin key is set."""
    if settings.admin_key is None:
        return []
    sessions = sessions or SessionStore()
    # Allow-lists are checked against the configured models, as the admin API checks them.
    keys = KeyRepository(database, known_models=[m.info.id for m in settings.models])
    sign_in = SignIn(settings.admin_key, sessions, keys)
    key_pages = KeyPages(keys, usage)
    usage_pages = UsagePages(usage)
    playground = Playground(settings, keys)
    pages: dict[str, dict[str, PageHandler]] = {
        "/signout": {"POST": sign_in.sign_out},
        "/keys": {"GET": key_pages.index, "POST": key_pages.create},
        "/keys/{key_id:int}": {"GET": key_pages.show, "POST": key_pages.update},
        "/keys/{key_id:int}/rotate": {"POST": key_pages.rotate},
        "/keys/{key_id:int}/revoke": {"POST": key_pages.revoke},
        "/keys/{key_id:int}/delete": {"POST": key_pages.delete},
        "/usage": {"GET": usage_pages.page},
        "/usage.csv": {"GET": usage_pages.export},
        "/requests": {"GET": RequestsPage(usage).page},
        "/models": {"GET": ModelsPage(settings, health, usage).page},
        "/playground": {"GET": playground.page},
        "/playground/key": {"POST": playground.temporary_key},
    }
    routes: list[BaseRoute] = [
        Route("/signin", _by_method({"GET": sign_in.form, "POST": sign_in.submit}),
              methods=_ALL_METHODS),
        Route("/", _home, methods=_ALL_METHODS),
        *(Route(path, guarded(sessions, handlers), methods=_ALL_METHODS)
          for path, handlers in pages.items()),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    console = SecurityHeaders(Router(routes, default=_not_found))
    return [Route("/console", SecurityHeaders(request_response(_home)), methods=_ALL_METHODS),
            Mount("/console", app=console)]


async def _home(request: Request) -> Response:
    return RedirectResponse(HOME, status_code=303)


def _by_method(handlers: dict[str, Callable[[Request], Awaitable[Response]]]
               ) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        handler = handlers.get("GET" if request.method == "HEAD" else request.method)
        if handler is None:
            return error_response(405, f"Method {request.method} is not allowed here; use "
                                  f"{', '.join(handlers)}.", allow=", ".join(handlers))
        return await handler(request)

    return endpoint


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(404, "No console page is at this path.")
    await response(scope, receive, send)
