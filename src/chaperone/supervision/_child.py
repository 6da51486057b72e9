"""A command run as a job: started in a process group of its own, sent the signals
``chaperone run`` receives, and stopped, group and all, when a limit says so.

- Signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to ``chaperone
  run`` go to the job's whole group, and do not stop ``chaperone run`` itself: it keeps
  supervising until the job ends, then reports and exits with the job's status. A
  signal that arrives while the command is being started is sent once it runs.
- Stopping: SIGTERM to the group, then SIGKILL to whatever of the group is left at the
  end of the grace period, even when the command itself already exited (a child that
  ignores SIGTERM would otherwise live on).
- Exit statuses follow the shell's: 127 for a command that does not exist, 126 for one
  that exists but cannot be run (not executable, a directory, not a program), 128 + N
  for a command killed by signal N.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Final

__all__ = [
    "EXIT_CANNOT_RUN",
    "EXIT_NOT_FOUND",
    "FORWARDED_SIGNALS",
    "ChildProcess",
    "StartFailed",
    "exit_status",
]

FORWARDED_SIGNALS: Final = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
"""The signals sent on to the job's process group."""
EXIT_NOT_FOUND: Final = 127
EXIT_CANNOT_RUN: Final = 126
_GROUP_POLL: Final = 0.02
"""Seconds between two looks at a group being stopped."""


def exit_status(returncode: int) -> int:
    """The shell's convention: 128 + signal number for a child killed by a signal."""
    return 128 - returncode if returncode < 0 else returncode


class StartFailed(Exception):  # noqa: N818 - a result as much as an error
    """The command could not be started: the status the shell would give, and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ChildProcess:
    """The job's process, and the signal handlers that forward to its group while it
    runs. Use as a context manager: the handlers are put back on leaving.
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        stdout: int | None = None,
        stderr: int | None = None,
    ) -> None:
        """Install the forwarding handlers, then start ``command``, its standard output
        and error going to the file descriptors ``stdout`` and ``stderr`` when given
        (else it inherits ours); StartFailed (handlers put back) when it cannot be
        started.
        """
        self.command = tuple(command)
        self._process: subprocess.Popen[bytes] | None = None
        self._early: list[int] = []
        self.signals_received: list[int] = []
        """Every signal forwarded (or due to be), in order."""
        # Handlers first: a signal arriving while the child starts must not kill
        # chaperone and leave the child running unsupervised.
        self._previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED_SIGNALS}
        try:
            self._process = subprocess.Popen(  # noqa: S603 - the user's command
                self.command, env=dict(env), process_group=0, stdout=stdout, stderr=stderr
            )
        except OSError as exc:
            self.restore_signals()
            raise _start_failure(self.command[0], exc) from None
        for signum in self._early:
            self._signal_group(signum)

    @property
    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the command has not started")
        return self._process

    @property
    def pid(self) -> int:
        """The command's pid, also its process group's id."""
        return self._started.pid

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self.signals_received.append(signum)
        if self._process is None:
            self._early.append(signum)  # arrived while the child was being started
        elif self._process.poll() is None:
            self._signal_group(signum)

    def _signal_group(self, signum: int) -> bool:
        """Send ``signum`` to the job's process group; False when the group is gone."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def poll(self) -> int | None:
        """The command's return code once it ended, else None."""
        return self._started.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds (None: for good) for the command to end; its
        return code, or None when it still runs.
        """
        try:
            return self._started.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def returncode(self) -> int:
        """Wait for the command to end; its return code."""
        return self._started.wait()

    def group_alive(self) -> bool:
        """Whether any process of the job's group is still there."""
        return self._signal_group(0)

    def stop(self, grace: float) -> None:
        """SIGTERM to the group; SIGKILL to what is left of it after ``grace`` seconds,
        whether or not the command itself ended; then reap the command.
        """
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.poll() is not None and not self.group_alive():
                return
            time.sleep(_GROUP_POLL)
        self._signal_group(signal.SIGKILL)
        self.returncode()

    def restore_signals(self) -> None:
        """Put back the handlers that were there before (safe to call twice)."""
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        self._previous = {}

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.restore_signals()


def _start_failure(program: str, exc: OSError) -> StartFailed:
    """What the shell would say and exit with for a command that did not start."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return StartFailed(EXIT_NOT_FOUND, f"cannot start {program!r}: {reason}")
    return StartFailed(EXIT_CANNOT_RUN, f"cannot start {program!r}: {reason} (not runnable)")
