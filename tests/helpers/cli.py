"""Run the real ``chaperone`` console script in a subprocess, in a clean environment.

Every run gets ``cwd=tmp_path`` (so no ``.env`` or ``chaperone.toml`` of the repository
leaks in), an environment free of the caller's ``CHAPERONE_*`` variables, and its own
SQLite store file, unless the test says otherwise.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone import SystemClock
from chaperone.builtin.database_channel import read_history
from chaperone.cli.jobs import list_jobs
from chaperone.store import SQLiteStore

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

CHAPERONE = Path(sys.executable).parent / "chaperone"
"""The console script installed next to the interpreter running the tests."""

TESTS_DIR = Path(__file__).resolve().parent.parent
FIXTURE_PLUGINS = TESTS_DIR / "fixtures" / "plugins"
INSTALL_LINE = (
    f"{Path(sys.executable).parent / 'pip'} install "
    "tests/fixtures/plugins/chaperone-testwebhook tests/fixtures/plugins/chaperone-brokenplugin "
    "tests/fixtures/plugins/chaperone-testextend"
)
"""What installs the fixture plugins (run from the repository root)."""

DEFAULT_TIMEOUT = 60.0
STORE_FILE = "chaperone.db"
"""The SQLite file :func:`clean_environ` puts the store in."""


@attrs.frozen
class CliResult:
    """How one run of ``chaperone`` ended."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Standard output parsed as JSON (a clear failure when it is not)."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            pytest.fail(f"`chaperone {' '.join(self.args)}` printed no JSON ({exc}):\n{self}")

    def __str__(self) -> str:
        return (
            f"$ chaperone {' '.join(self.args)}\nexit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def store_url(path: Path) -> str:
    """The ``sqlite:///`` URL of an absolute file path."""
    return f"sqlite:///{path.resolve()}"


def clean_environ(tmp_path: Path, **variables: str) -> dict[str, str]:
    """``os.environ`` less every ``CHAPERONE_*`` variable, with a store in ``tmp_path``,
    then ``variables`` on top.
    """
    environ = {
        name: value for name, value in os.environ.items() if not name.startswith("CHAPERONE_")
    }
    environ["CHAPERONE_STORE"] = store_url(tmp_path / STORE_FILE)
    environ.update(variables)
    return environ


def stored_history(folder: Path) -> list[dict[str, Any]]:
    """The history in the store :func:`clean_environ` set up in ``folder``, read in this
    process, newest first.
    """
    path = folder / STORE_FILE
    store = SQLiteStore(path, SystemClock(), store_url(path))
    try:
        return read_history(store, 100_000)
    finally:
        store.close()


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


def start_cli(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start ``chaperone *args`` without waiting for it."""
    return subprocess.Popen(
        [str(CHAPERONE), *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def finish_cli(
    process: subprocess.Popen[str], args: Sequence[str], timeout: float = DEFAULT_TIMEOUT
) -> CliResult:
    """Wait for a process from :func:`start_cli` (killing it past ``timeout``)."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"`chaperone {' '.join(args)}` ran over {timeout}s:\n{stdout}\n{stderr}")
    return CliResult(tuple(args), process.returncode, stdout, stderr)


def run_cli(
    *args: str, cwd: Path, env: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT
) -> CliResult:
    """Run ``chaperone *args`` to the end and return what it did."""
    return finish_cli(start_cli(args, cwd=cwd, env=env), args, timeout)


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


@attrs.frozen
class Invocation:
    """One ``chaperone`` command to run: its arguments, working directory, environment."""

    args: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]


def run_many(
    invocations: Mapping[str, Invocation], *, parallel: int = 6, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, CliResult]:
    """Run independent commands, ``parallel`` at a time; return each result by name.

    Most of a run is Python starting up, so overlapping them saves the test run's time.
    """
    results: dict[str, CliResult] = {}
    pending = list(invocations.items())
    running: list[tuple[str, Invocation, subprocess.Popen[str]]] = []
    while pending or running:
        while pending and len(running) < parallel:
            name, invocation = pending.pop(0)
            process = start_cli(invocation.args, cwd=invocation.cwd, env=invocation.env)
            running.append((name, invocation, process))
        name, invocation, process = running.pop(0)
        results[name] = finish_cli(process, invocation.args, timeout)
    return results
