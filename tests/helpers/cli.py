"""The core's CLI helpers: the runner, clean environment and history reader of
:mod:`chaperone.testing.cli` (which plugins' tests use too), plus what only the core's
tests need: its job listing, and the fixture plugins' installation check.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chaperone import SystemClock
from chaperone.store import SQLiteStore
from chaperone.supervision._listing import list_jobs
from chaperone.testing.cli import (
    CHAPERONE,
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    finish_cli,
    run_cli,
    run_many,
    start_cli,
    store_url,
    stored_history,
)

__all__ = [
    "CHAPERONE",
    "FIXTURE_PLUGINS",
    "INSTALL_LINE",
    "STORE_FILE",
    "CliResult",
    "Invocation",
    "clean_environ",
    "finish_cli",
    "require_fixture_plugins",
    "run_cli",
    "run_many",
    "start_cli",
    "store_url",
    "stored_history",
    "stored_jobs",
]

TESTS_DIR = Path(__file__).resolve().parent.parent
FIXTURE_PLUGINS = TESTS_DIR / "fixtures" / "plugins"
INSTALL_LINE = (
    f"{Path(sys.executable).parent / 'pip'} install "
    "tests/fixtures/plugins/chaperone-testwebhook tests/fixtures/plugins/chaperone-brokenplugin "
    "tests/fixtures/plugins/chaperone-testextend"
)
"""What installs the fixture plugins (run from the repository root)."""


def stored_jobs(folder: Path) -> list[dict[str, Any]]:
    """The job records in the store :func:`clean_environ` set up in ``folder``, as
    ``chaperone jobs --json`` shows them, newest first.
    """
    path = folder / STORE_FILE
    store = SQLiteStore(path, SystemClock(), store_url(path))
    try:
        return list_jobs(store, time.time())
    finally:
        store.close()


def require_fixture_plugins() -> None:
    """Fail (never skip) with the install line when the fixture plugins are missing or
    installed from an older version of their source.
    """
    for distribution, module in (
        ("chaperone-testwebhook", "chaperone_testwebhook"),
        ("chaperone-brokenplugin", "chaperone_brokenplugin"),
        ("chaperone-testextend", "chaperone_testextend"),
    ):
        try:
            importlib.metadata.distribution(distribution)
            installed_at_all = True
        except importlib.metadata.PackageNotFoundError:
            installed_at_all = False
        if not installed_at_all:
            pytest.fail(
                f"the test plugin {distribution} is not installed; run: {INSTALL_LINE}",
                pytrace=False,
            )
        spec = importlib.util.find_spec(module)
        source = FIXTURE_PLUGINS / distribution / "src" / module / "__init__.py"
        installed = Path(spec.origin) if spec and spec.origin else None
        if installed is None or installed.read_text() != source.read_text():
            pytest.fail(
                f"the installed {distribution} differs from {source}; reinstall: {INSTALL_LINE}",
                pytrace=False,
            )
