"""Sessions: tests (core + fixture plugins), lint (ruff), typecheck (mypy strict on src/);
bench (benchmarks, on demand only: `nox -s bench`).

`nox` runs the default sessions; `nox -s tests -- -k ratelimit` passes arguments to pytest.
Plugin sessions (each plugin under plugins/ alone, and their combinations) join here as the
channel plugins land: the noxfile finds them by listing the folder.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
FIXTURE_PLUGINS = sorted(str(path) for path in (ROOT / "tests/fixtures/plugins").glob("*/"))

BENCHMARKS = sorted(str(path) for path in (ROOT / "bench").glob("bench_*.py"))

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


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks under bench/, on demand (never part of the test run)."""
    session.install("-e", ".")
    for script in BENCHMARKS:
        session.run("python", script, *session.posargs)
