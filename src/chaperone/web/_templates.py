"""The Jinja2 templates of the web app (``templates/``), autoescaped, and a page
renderer that hands every template the prefix, the user and the form's CSRF token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from chaperone.web._auth import csrf_token, current_user

__all__ = ["TEMPLATES", "render"]

TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)
"""Every page's templates; others may add a loader for theirs."""


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
