"""The browser tests' fixtures: a real headless Chromium (``browser``, once per session)
and a ``page`` per test whose screenshot is kept (see tests/helpers/browser.py)."""

from helpers.browser import browser, page

__all__ = ["browser", "page"]
