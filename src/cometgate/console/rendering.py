"""The console's Jinja2 environment (autoescaping on) and the one way pages are rendered."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from cometgate.console.session import Session


def environment() -> Environment:
    return _ENVIRONMENT


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cometgate.console", "templates"),
                      autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["usd"] = _usd
    return env


def render(name: str, session: Session | None, *, status: int = 200,
           **context: Any) -> HTMLResponse:
    """`session` supplies the CSRF token every form on the page carries (None: signed out)."""
    template = environment().get_template(name)
    html = template.render(csrf_token=session.csrf_token if session else "",
                           signed_in=session is not None, **context)
    return HTMLResponse(html, status_code=status)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _usd(amount: Decimal | None) -> str:
    return "" if amount is None else f"${amount:,.6f}".rstrip("0").rstrip(".")


# Built once at import, never replaced: every app in the process renders the same packaged
# templates, so sharing Jinja's (bounded) template cache among them is sharing constants.
_ENVIRONMENT = _environment()
