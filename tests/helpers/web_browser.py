"""What the end-to-end browser tests do on the web app's pages: sign in as a person does,
keep a screenshot at desktop and phone size, and measure a page's horizontal overflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from helpers.browser import screenshot_path

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = [
    "DESKTOP",
    "PASSWORD",
    "PHONE",
    "ROUTING_KEY",
    "USER",
    "overflow",
    "screenshots_at_both_sizes",
    "sign_in",
    "users_config",
]

USER: Final = "ann"
PASSWORD: Final = "correct horse battery"  # noqa: S105 - a test password
ROUTING_KEY: Final = "e2eRoutingKey0123456789abcdefXYZ"
"""A PagerDuty routing key of the 32 characters the channel requires."""
DESKTOP: Final = {"width": 1280, "height": 800}
PHONE: Final = {"width": 390, "height": 844}


def users_config(password_hash: str) -> str:
    """A chaperone.toml giving the responder :data:`USER` the password of ``password_hash``."""
    return (
        f'[[serve.users]]\nname = "{USER}"\npassword_hash = "{password_hash}"\nrole = "responder"\n'
    )


def sign_in(page: Page, password: str = PASSWORD, name: str = USER) -> None:
    """Fill in the login form the page shows and send it."""
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def overflow(page: Page) -> int:
    """How many CSS pixels the page body is wider than the viewport (0: none)."""
    width: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )
    return width


def screenshots_at_both_sizes(
    page: Page, request: pytest.FixtureRequest, label: str
) -> tuple[Path, Path]:
    """Full-page screenshots of what ``page`` shows at desktop then phone size (the page
    reloaded at each size), named after the test and ``label``; the desktop size again
    after.
    """
    paths = []
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.reload()
        path = screenshot_path(request.node.nodeid, f"{label}-{size_name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    page.set_viewport_size(DESKTOP)
    return paths[0], paths[1]
