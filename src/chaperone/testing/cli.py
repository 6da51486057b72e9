"""Run the real ``chaperone`` command as a user does: in a subprocess, in a clean
environment, with a store of its own.

Every run gets a working folder of its own (so no ``.env`` or ``chaperone.toml`` of the
repository leaks in), an environment free of the caller's ``CHAPERONE_*`` variables, and
its own SQLite store file in that folder, unless the test says otherwise::

    from chaperone.testing.cli import clean_environ, run_cli, stored_history

    def test_delivered(tmp_path):
        env = clean_environ(tmp_path, CHAPERONE_TEAMS_WEBHOOK_URL=server.url_for("/hook"))
        result = run_cli("test-alerts", "--channel", "teams", cwd=tmp_path, env=env)
        assert result.returncode == 0, str(result)
        assert {row["status"] for row in stored_history(tmp_path)} == {"delivered"}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import pytest

from chaperone._clock import SystemClock
from chaperone.builtin.database_channel import read_history
from chaperone.store import SQLiteStore

__all__ = [
    "CHAPERONE",
    "DEFAULT_TIMEOUT",
    "STORE_FILE",
    "CliResult",
    "Invocation",
    "clean_environ",
    "finish_cli",
    "run_cli",
    "run_many",
    "start_cli",
    "store_url",
    "stored_history",
]

CHAPERONE: Final = Path(sys.executable).parent / "chaperone"
"""The console script installed next to the interpreter running the tests."""

DEFAULT_TIMEOUT: Final = 60.0
"""Seconds a command may run before the runner kills it and fails the test."""

STORE_FILE: Final = "chaperone.db"
"""The SQLite file :func:`clean_environ` puts the store in, inside the run's folder."""


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
    """The ``sqlite:///`` URL of a file path (made absolute)."""
    return f"sqlite:///{path.resolve()}"


def clean_environ(folder: Path, *, without: Iterable[str] = (), **variables: str) -> dict[str, str]:
    """``os.environ`` less every ``CHAPERONE_*`` variable (and every variable starting
    with one of the prefixes ``without`` names, such as ``MAIL_``), with a store in
    ``folder``, then ``variables`` on top.
    """
    prefixes = ("CHAPERONE_", *without)
    environ = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    environ["CHAPERONE_STORE"] = store_url(folder / STORE_FILE)
    environ.update(variables)
    return environ


def stored_history(folder: Path, limit: int = 100_000) -> list[dict[str, Any]]:
    """The delivery history the ``database`` channel recorded in the store
    :func:`clean_environ` set up in ``folder``, read in this process, newest first.
    """
    path = folder / STORE_FILE
    store = SQLiteStore(path, SystemClock(), store_url(path))
    try:
        return read_history(store, limit)
    finally:
        store.close()


def start_cli(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start ``chaperone *args`` without waiting for it."""
    return subprocess.Popen(  # noqa: S603 - our own console script, arguments from the test
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
    """Wait for a process from :func:`start_cli`; past ``timeout``, kill it and fail."""
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


@attrs.frozen
class Invocation:
    """One ``chaperone`` command to run: its arguments, working folder and environment."""

    args: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]


def run_many(
    invocations: Mapping[str, Invocation],
    *,
    parallel: int | None = 6,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, CliResult]:
    """Run independent commands, ``parallel`` at a time (``None``: all at once); return
    each result by name. A command still running when a failure stops the rest is killed.

    Most of a run is Python starting up, so overlapping them saves the test run's time.
    """
    limit = len(invocations) if parallel is None else parallel
    results: dict[str, CliResult] = {}
    pending = list(invocations.items())
    running: list[tuple[str, Invocation, subprocess.Popen[str]]] = []
    try:
        while pending or running:
            while pending and len(running) < max(limit, 1):
                name, invocation = pending.pop(0)
                process = start_cli(invocation.args, cwd=invocation.cwd, env=invocation.env)
                running.append((name, invocation, process))
            name, invocation, process = running[0]
            results[name] = finish_cli(process, invocation.args, timeout)
            running.pop(0)
    finally:
        for _, _, process in running:
            if process.returncode is None:
                process.kill()
                process.communicate()
    return results
