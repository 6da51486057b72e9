"""The refresh script in a real headless Chromium (Debian's), its clock driven by the
test: it reloads the page every ``data-refresh`` seconds, and waits while a form is
being filled in.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

import chaperone

STATIC_DIRECTORY = Path(chaperone.__file__).parent / "web" / "static"
PAGE = """<!doctype html>
<html><head><script src="refresh.js" defer></script></head>
<body data-refresh="15">
<form method="post"><input name="note"><button type="submit">Send</button></form>
</body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A loopback HTTP server serving a page with the refresh script."""
    folder = tmp_path_factory.mktemp("refresh")
    shutil.copy(STATIC_DIRECTORY / "refresh.js", folder / "refresh.js")
    (folder / "page.html").write_text(PAGE, encoding="utf-8")
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/page.html"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test's output clean."""


@pytest.fixture
def page(site: str, browser: Browser) -> Iterator[Page]:
    """The page on a phone's screen, its clock driven by the test."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.clock.install()
        page.goto(site)
        page.evaluate("window.loadedBefore = true")
        yield page
    finally:
        context.close()


def reloaded(page: Page) -> bool:
    """Whether the page was loaded anew since the test marked it."""
    return not page.evaluate("window.loadedBefore === true")


class TestRefresh:
    def test_reloads_after_its_interval(self, page: Page) -> None:
        """Nothing happens before 15 s; after them the page is loaded anew."""
        page.clock.run_for(14_000)
        assert not reloaded(page)
        with page.expect_event("load"):
            page.clock.run_for(2_000)
        assert reloaded(page)

    def test_waits_while_a_form_is_being_filled_in(self, page: Page) -> None:
        """A field with the focus and an edit in it hold the reload off, however long."""
        page.fill("input[name=note]", "on it")
        page.clock.run_for(120_000)
        assert not reloaded(page)
        assert page.input_value("input[name=note]") == "on it"
