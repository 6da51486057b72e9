"""``chaperone serve`` run as a person runs it, for tests: started on ``--port 0``, its
URL read from the line it prints, stopped with SIGTERM.
"""

from __future__ import annotations

import selectors
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

from helpers.cli import start_cli

__all__ = ["START_TIMEOUT", "STOP_TIMEOUT", "Served", "first_line", "serving"]

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


@attrs.define
class Served:
    """A running ``chaperone serve`` and the base URL it printed."""

    process: subprocess.Popen[str]
    url: str
    stdout: str = ""
    stderr: str = ""

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` and wait (bounded) for the exit; keep what it printed. Once
        stopped, calling again only returns the exit status.
        """
        if self.process.returncode is not None:
            return self.process.returncode
        self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            pytest.fail(f"chaperone serve ignored {sig.name} for {STOP_TIMEOUT}s:\n{out}\n{err}")
        self.stdout += out
        self.stderr += err
        return self.process.returncode


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line ``process`` prints, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"chaperone serve printed nothing in {timeout}s:\n{err}")
    return process.stdout.readline()


@contextmanager
def serving(env: Mapping[str, str], cwd: Path, *args: str) -> Iterator[Served]:
    """Run ``chaperone serve --port 0 *args``; stop it with SIGTERM after."""
    process = start_cli(("serve", "--port", "0", *args), cwd=cwd, env=env)
    line = first_line(process, START_TIMEOUT)
    prefix = "listening on "
    if not line.startswith(prefix):
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"chaperone serve did not start: {line}{out}\n{err}")
    served = Served(process, line.removeprefix(prefix).split()[0], stdout=line)
    try:
        yield served
    finally:
        served.stop()
