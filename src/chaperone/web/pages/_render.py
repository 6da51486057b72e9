"""The pages' Jinja2 environment (autoescape on for every template) and the static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jinja2
import markupsafe
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from chaperone import _sanitize
from chaperone.web.pages._links import Links

__all__ = ["REFRESH_SECONDS", "STATIC_DIRECTORY", "TEMPLATE_DIRECTORY", "render"]

_WEB: Final = Path(__file__).resolve().parent.parent
TEMPLATE_DIRECTORY: Final = _WEB / "templates"
STATIC_DIRECTORY: Final = _WEB / "static"
REFRESH_SECONDS: Final = 15
"""How often the overview and the job page reload themselves (paused while a form is
being filled in)."""


def _printable(value: object) -> object:
    """What a template prints, valid and without control characters (a lone surrogate
    would not even encode); markup the templates built is left as it is.
    """
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return _sanitize.clean_text(value)
    return value


_TEMPLATES: Final = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIRECTORY),
        autoescape=True,  # every template, whatever its name
        finalize=_printable,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


def render(
    request: Request,
    template: str,
    links: Links,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    """Render ``template`` with ``context``, the ``links`` and the page's ``request``."""
    return _TEMPLATES.TemplateResponse(
        request,
        template,
        {"links": links, "refresh_seconds": None, **context},
        status_code=status_code,
    )
