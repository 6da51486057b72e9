"""Real faults for the store tests: another process holding a SQLite file's write lock,
another process using the store, and a small disk that fills up (a tmpfs, where the
test may mount one)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

__all__ = ["WriteLock", "fill_disk", "in_another_process", "small_disk"]

TIMEOUT_S = 60.0

_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class WriteLock:
    """Another process holding the write lock of the SQLite file at ``path``
    (``BEGIN IMMEDIATE`` on its own connection) from entering until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # ends when it prints, or exits
        assert line.strip() == "locked", f"the locking process said {line!r}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Let go of the lock and wait for the process to end; harmless twice."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.communicate("\n", timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


def in_another_process(code: str, *args: str) -> str:
    """Run Python ``code`` (with ``sys.argv[1:]`` = ``args``) in a new process; return
    what it printed, failing the test if it failed."""
    finished = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if finished.returncode != 0:
        pytest.fail(f"the other process exited {finished.returncode}:\n{finished.stderr}")
    return finished.stdout


@contextlib.contextmanager
def small_disk(directory: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``directory`` for the block; skips the test where
    mounting is not allowed (it needs root, or CAP_SYS_ADMIN)."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command: the full-disk case needs a small tmpfs")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], timeout=TIMEOUT_S, check=False)


def fill_disk(directory: Path) -> Path:
    """Write a file in ``directory`` until its file system is full; return the file."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        with contextlib.suppress(OSError):
            while out.write(b"\0") == 1:  # the last bytes, one at a time
                pass
    assert os.statvfs(directory).f_bavail == 0
    return filler
