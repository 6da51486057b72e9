"""The web app's pages, rendered on the server: overview, jobs, incidents, history,
maintenance and schedules. :data:`PAGE_ROUTES` are mounted under the app's prefix; the
page data are plain functions of a store, the settings and the time, tested without a
server.
"""

from __future__ import annotations

from chaperone.web.pages._links import Links
from chaperone.web.pages._routes import PAGE_ROUTES

__all__ = ["PAGE_ROUTES", "Links"]
