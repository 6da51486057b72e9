"""The browser-test infrastructure itself: Debian's Chromium, driven by Playwright, loads
a page from a real HTTP server on 127.0.0.1, runs its script on a click, and leaves a
screenshot of it among the test artifacts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from chaperone.testing.servers import RecordingServer, Reply
from helpers.browser import CHROMIUM, save_screenshot, screenshot_path

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Check-in</title></head>
<body>
  <h1 id="state">Not clicked</h1>
  <button id="go" type="button">Check in</button>
  <script>
    document.getElementById("go").addEventListener("click", async () => {
      const answer = await fetch("/clicked", {method: "POST", body: "from the browser"});
      document.getElementById("state").textContent = "Clicked: " + answer.status;
    });
  </script>
</body>
</html>
"""


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """A loopback server answering the page first, then 202 to whatever follows."""
    with RecordingServer(
        [Reply(body=_PAGE, headers={"Content-Type": "text/html; charset=utf-8"})],
        default=Reply(status=202, body=""),
    ) as running:
        yield running


class TestBrowser:
    """The real browser, a real server, a real click."""

    def test_a_click_reaches_the_server(
        self, page: Page, server: RecordingServer, request: pytest.FixtureRequest
    ) -> None:
        """Clicking the button runs the page's script: the server receives its POST and
        the page shows the answer; screenshots are kept under the test's name."""
        page.goto(server.url_for("/"))
        expect(page.locator("#state")).to_have_text("Not clicked")
        before = save_screenshot(page, request, "before")
        page.get_by_role("button", name="Check in").click()
        expect(page.locator("#state")).to_have_text("Clicked: 202")
        requests = server.wait_for_requests(2)
        assert [(r.method, r.path) for r in requests] == [("GET", "/"), ("POST", "/clicked")]
        assert requests[1].body == b"from the browser"
        assert before.stat().st_size > 0
        assert before == screenshot_path(request.node.nodeid, "before")

    def test_the_browser_is_the_configured_binary(self, page: Page) -> None:
        """The browser driven is the configured Chromium binary (its version is the one
        the binary prints), never one Playwright fetched."""
        assert page.context.browser is not None
        printed = subprocess.run(
            [str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        assert f" {page.context.browser.version} " in f" {printed} "
