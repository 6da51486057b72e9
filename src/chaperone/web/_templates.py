"""The one Jinja2 environment of the web app (``templates/``): autoescape on for every
template, every printed value made valid printable text, an undefined name an error.

:func:`render` hands a template the prefix, the user and the form's CSRF token besides
its own values; the pages add their links (:mod:`chaperone.web.pages._render`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jinja2
import markupsafe
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from chaperone import _sanitize
from chaperone.web._auth import csrf_token, current_user

__all__ = ["STATIC_DIRECTORY", "TEMPLATES", "TEMPLATE_DIRECTORY", "render"]

_WEB: Final = Path(__file__).resolve().parent
TEMPLATE_DIRECTORY: Final = _WEB / "templates"
STATIC_DIRECTORY: Final = _WEB / "static"


def _printable(value: object) -> object:
    """What a template prints, valid and without control characters (a lone surrogate
    would not even encode); markup the templates built is left as it is.
    """
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return _sanitize.clean_text(value)
    return value


TEMPLATES: Final = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIRECTORY),
        autoescape=True,  # every template, whatever its name
        finalize=_printable,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
"""Every template of the app."""


def render(request: Request, template: str, code: int = 200, **values: Any) -> HTMLResponse:
    """Render ``template`` with ``values``, the prefix, the user and a CSRF token."""
    context = {
        "prefix": request.app.state.context.prefix,
        "user": current_user(request),
        "csrf_token": csrf_token(request),
        **values,
    }
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=code)
    response.headers["Cache-Control"] = "no-store"
    return response
