"""The whole web app as ``chaperone serve`` runs it: the pages, the actions and the
check-ins on top of the app's own routes (login, ``/health``, ``/metrics``).
"""

from __future__ import annotations

from starlette.applications import Starlette

from chaperone.web._actions import action_routes
from chaperone.web._app import create_app
from chaperone.web._checkins import checkin_routes
from chaperone.web._context import WebContext
from chaperone.web.pages import PAGE_ROUTES

__all__ = ["build_site"]


def build_site(context: WebContext) -> Starlette:
    """The app with every route: actions and check-ins before the pages, so a POST to a
    page's address finds its action.
    """
    return create_app(context, routes=[*action_routes(), *checkin_routes(), *PAGE_ROUTES])
