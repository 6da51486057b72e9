"""Sessions: tests (core + fixture plugins), lint (ruff), typecheck (mypy strict on src/).

`nox` runs the default sessions; `nox -s tests -- -k ratelimit` passes arguments to pytest.
Plugin sessions (each plugin under plugins/ alone, and their combinations) join here as the
channel plugins land: the noxfile finds them by listing the folder.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
FIXTURE_PLUGINS = sorted(str(path) for path in (ROOT / "tests/fixtures/plugins").glob("*/"))

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


@nox.session
def tests(session: nox.Session) -> None:
    """Core tests, with the test plugin distributions of tests/fixtures installed."""
    session.install("-e", ".[test]", *FIXTURE_PLUGINS)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[test]", "mypy>=1.10", "types-psutil")
    session.run("mypy")
