"""Job processes (``dispatch_worker.py``): one-shot, or a pool released together."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import pytest

__all__ = ["WORKER", "WorkerPool", "dispatch"]

WORKER = Path(__file__).resolve().parent / "dispatch_worker.py"
TIMEOUT = 60.0


def dispatch(*supervision_ids: str, cwd: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Raise one JobStuck per id in a new process; return what became of each."""
    try:
        finished = subprocess.run(
            [sys.executable, str(WORKER), *supervision_ids],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"a dispatch worker ran over {TIMEOUT}s: {exc.stdout!r} {exc.stderr!r}")
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        pytest.fail(f"a dispatch worker exited {finished.returncode}:\n{finished}")
    reports: list[dict[str, Any]] = json.loads(lines[-1])
    return reports


class WorkerPool:
    """``size`` job processes, each with its runtime built, waiting for supervision ids.

    :meth:`release` hands one id to each of the first workers at once (they are already
    blocked reading, so they start within microseconds of each other) and returns what
    became of each. Standard error of each worker goes to a file in ``cwd``.
    """

    def __init__(self, size: int, *, cwd: Path, env: Mapping[str, str]) -> None:
        self._cwd = cwd
        self._env = dict(env)
        self._size = size
        self._processes: list[subprocess.Popen[str]] = []
        self._stderr: list[IO[str]] = []

    def __enter__(self) -> Self:
        for index in range(self._size):
            errors = (self._cwd / f"worker-{index}.stderr").open("w", encoding="utf-8")
            self._stderr.append(errors)
            self._processes.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), "--serve"],
                    cwd=self._cwd,
                    env=self._env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                    encoding="utf-8",
                )
            )
        answers = self._read_lines(self._processes)
        for index, answer in enumerate(answers):
            if answer != "ready":
                self._fail(f"worker {index} did not get ready: {answer!r}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for process in self._processes:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()
        for process in self._processes:
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for errors in self._stderr:
            errors.close()

    def release(self, supervision_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Hand ``supervision_ids[i]`` to worker ``i``, all at once; return each report."""
        if len(supervision_ids) > self._size:
            raise ValueError(f"{len(supervision_ids)} ids for {self._size} workers")
        chosen = self._processes[: len(supervision_ids)]
        for process, supervision_id in zip(chosen, supervision_ids, strict=True):
            assert process.stdin is not None
            process.stdin.write(supervision_id + "\n")
            process.stdin.flush()
        reports = []
        for index, line in enumerate(self._read_lines(chosen)):
            try:
                reports.append(json.loads(line))
            except json.JSONDecodeError:
                self._fail(f"worker {index} answered {line!r}")
        return reports

    def _read_lines(self, processes: Sequence[subprocess.Popen[str]]) -> list[str]:
        """One line from each process; a watchdog kills them all past the timeout."""

        def kill_all() -> None:
            for process in processes:
                process.kill()

        watchdog = threading.Timer(TIMEOUT, kill_all)
        watchdog.start()
        try:
            lines = []
            for process in processes:
                assert process.stdout is not None
                lines.append(process.stdout.readline().strip())
            return lines
        finally:
            watchdog.cancel()

    def _fail(self, message: str) -> None:
        for errors in self._stderr:
            errors.flush()
        logs = "\n".join(
            f"--- worker {index} stderr ---\n{(self._cwd / f'worker-{index}.stderr').read_text()}"
            for index in range(len(self._stderr))
        )
        pytest.fail(f"{message}\n{logs}")
