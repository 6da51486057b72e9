"""A real headless Chromium for the end-to-end tests: Debian's ``chromium`` driven by
Playwright (never a browser of Playwright's own: nothing here downloads one).

Fixtures (a test folder's conftest imports them: ``from helpers.browser import browser,
page``):

- ``browser``, once per session: the launched Chromium (its start is measured and
  reported at the end of the run). Playwright gives it a fresh user data directory of
  its own, deleted when it closes.
- ``page``, per test: a page in a new browser context (its own cookies and storage), with
  a screenshot of it kept after the test, pass or fail, as
  ``test-artifacts/screenshots/<test>.png``. :func:`save_screenshot` keeps more along
  the way.

Where the browser is missing, the tests skip, saying what to install, unless
``CHAPERONE_TEST_BROWSER=required`` (the nox ``tests`` session sets it, and installs
Debian's chromium first where it can): then they fail.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from helpers.report import report

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "REQUIRED_VARIABLE",
    "browser",
    "chromium_or_skip",
    "page",
    "save_screenshot",
    "screenshot_path",
]

REQUIRED_VARIABLE: Final = "CHAPERONE_TEST_BROWSER"
"""Set to ``required`` to fail (rather than skip) the browser tests without a browser."""
CHROMIUM: Final = Path(os.environ.get("CHAPERONE_TEST_CHROMIUM", "/usr/bin/chromium"))
"""The browser driven: Debian's chromium, unless CHAPERONE_TEST_CHROMIUM names another."""
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""No sandbox (the tests may run as root, in a container), and nothing that reaches out
to the network on its own: the tests talk to 127.0.0.1 only."""
ARTIFACTS: Final = Path(
    os.environ.get("CHAPERONE_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)
"""Where the tests keep what a person looks at afterwards (git-ignored)."""
_INSTALL_HINT: Final = (
    "install Debian's chromium (`apt-get install chromium`) or name a Chromium binary in "
    "CHAPERONE_TEST_CHROMIUM; `nox -s tests` installs it where it runs as root or with sudo"
)
_LAUNCH_TIMEOUT_MS: Final = 60_000

# Whatever runs these tests, Playwright must never fetch a browser of its own.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def chromium_or_skip() -> Path:
    """The Chromium binary; skip the test when it (or Playwright) is missing, or fail
    when ``CHAPERONE_TEST_BROWSER=required``.
    """
    problem = None
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problem = f"no Chromium at {CHROMIUM}: {_INSTALL_HINT}"
    try:
        import playwright.sync_api  # noqa: F401 - only whether it imports
    except ImportError:
        problem = "Playwright is not installed: install the test extra (`pip install -e '.[test]'`)"
    if problem is not None:
        if os.environ.get(REQUIRED_VARIABLE) == "required":
            pytest.fail(f"{problem}; {REQUIRED_VARIABLE}=required", pytrace=False)
        pytest.skip(problem)
    return CHROMIUM


def screenshot_path(test_name: str, label: str = "") -> Path:
    """Where the screenshot of ``test_name`` (a pytest node id or name) is kept: one
    file name of safe characters per test and label, in ``ARTIFACTS/screenshots``.
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", test_name.split("::", 1)[-1]).strip("_")
    suffix = f"--{re.sub(r'[^A-Za-z0-9._-]+', '_', label)}" if label else ""
    return ARTIFACTS / "screenshots" / f"{name}{suffix}.png"


def save_screenshot(page: Page, request: pytest.FixtureRequest, label: str) -> Path:
    """Keep a full-page screenshot of ``page`` now, named after the test and ``label``."""
    path = screenshot_path(request.node.nodeid, label)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, launched headless once per test module (its start reported).

    Not once per session: Playwright's sync API runs an event loop in the main thread
    while it is started, and every later test that calls ``asyncio.run`` would fail.
    """
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    with sync_playwright() as playwright:
        driven = time.perf_counter()
        launched = playwright.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=list(CHROMIUM_ARGS),
            timeout=_LAUNCH_TIMEOUT_MS,
        )
        ready = time.perf_counter()
        report(
            f"browser: Chromium {launched.version} ready in {ready - started:.2f} s "
            f"(Playwright's driver {driven - started:.2f} s, the browser {ready - driven:.2f} s)"
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context; its screenshot is kept after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    try:
        yield opened
    finally:
        try:
            if not opened.is_closed():
                path = screenshot_path(request.node.nodeid)
                path.parent.mkdir(parents=True, exist_ok=True)
                opened.screenshot(path=str(path), full_page=True)
        finally:
            context.close()
