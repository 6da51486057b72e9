"""The web app of ``chaperone serve``: an ASGI application (Starlette) under uvicorn.

:func:`create_app` builds it on a :class:`WebContext` (settings, clock, store); every
route reaches the context through ``request.app.state.context``. Authentication and CSRF
helpers for routes are in :mod:`chaperone.web._auth`.
"""

from chaperone.web._app import create_app
from chaperone.web._context import WebContext

__all__ = ["WebContext", "create_app"]
