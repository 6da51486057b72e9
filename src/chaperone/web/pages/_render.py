"""How a page renders: the app's one Jinja2 environment, with the page's links."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from chaperone.web._templates import STATIC_DIRECTORY, TEMPLATES
from chaperone.web.pages._links import Links

__all__ = ["REFRESH_SECONDS", "STATIC_DIRECTORY", "render"]

REFRESH_SECONDS: Final = 15
"""How often the overview and the job page reload themselves (paused while a form is
being filled in)."""


def render(
    request: Request,
    template: str,
    links: Links,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    """Render ``template`` with ``context``, the ``links`` and the page's ``request``."""
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {"links": links, "refresh_seconds": None, **context},
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"  # what is open changes by the minute
    return response
