"""``OutputCapture``: a real child process writes into its pipes; what it wrote comes out
of the capture's own ends (pipes read by the test) byte for byte, the tail keeps the end,
and the capture finishes promptly whatever the child leaves behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import pytest

from chaperone.supervision._output_capture import QUIET_AFTER_EXIT, OutputCapture
from chaperone.supervision._output_tail import OutputTail


@attrs.define
class Drain:
    """A pipe standing for ``chaperone run``'s own standard output or error, read to its
    end by a thread."""

    read: int
    write: int
    received: bytearray = attrs.field(factory=bytearray)
    thread: threading.Thread | None = None

    def start(self) -> None:
        """Read the pipe in a thread until its end."""

        def loop() -> None:
            while chunk := os.read(self.read, 65536):
                self.received += chunk

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def close(self) -> bytes:
        """Close the writing end, wait for the reader, and return what it read."""
        os.close(self.write)
        assert self.thread is not None
        self.thread.join(10)
        os.close(self.read)
        return bytes(self.received)


@pytest.fixture
def drains() -> tuple[Drain, Drain]:
    """Two drained pipes: our standard output and error (each test closes them)."""
    made = tuple(Drain(*os.pipe()) for _ in range(2))
    for drain in made:
        drain.start()
    return made[0], made[1]


def start(capture: OutputCapture, code: str) -> subprocess.Popen[bytes]:
    """Run ``python -c code`` writing into the capture's pipes, and start its readers."""
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=capture.child_stdout, stderr=capture.child_stderr
    )
    capture.start()
    return child


class TestPassThrough:
    """What the child writes comes out unchanged."""

    def test_bytes_come_out_unchanged_and_the_tail_keeps_the_end(
        self, drains: tuple[Drain, Drain]
    ) -> None:
        """Any bytes (invalid UTF-8, carriage returns, no final newline) on both streams
        come out of the matching stream as written; the tail holds the end of both."""
        out, err = drains
        capture = OutputCapture(OutputTail(64), stdout=out.write, stderr=err.write)
        child = start(
            capture,
            "import sys, time\n"
            "sys.stdout.buffer.write(bytes(range(256)) * 40); sys.stdout.flush()\n"
            "time.sleep(0.3)\n"
            "sys.stderr.buffer.write(b'\\xff\\xfe half\\r done'); sys.stderr.flush()\n",
        )
        assert child.wait(20) == 0
        assert capture.finish()
        assert out.close() == bytes(range(256)) * 40
        assert err.close() == b"\xff\xfe half\r done"
        assert capture.tail.data().endswith(b"\xff\xfe half\r done")
        assert len(capture.tail.data()) == 64

    def test_output_arrives_while_the_child_still_runs(self, drains: tuple[Drain, Drain]) -> None:
        """A line the child writes without a newline reaches our output before the child
        ends (no line buffering, no waiting for the end)."""
        out, err = drains
        capture = OutputCapture(OutputTail(), stdout=out.write, stderr=err.write)
        child = start(
            capture,
            "import sys, time\nsys.stdout.write('partial'); sys.stdout.flush()\ntime.sleep(30)\n",
        )
        try:
            deadline = time.monotonic() + 10
            while bytes(out.received) != b"partial" and time.monotonic() < deadline:
                time.sleep(0.01)
            assert bytes(out.received) == b"partial"
            assert child.poll() is None
        finally:
            child.kill()
            child.wait()
        assert capture.finish()
        out.close()
        err.close()


class TestFinishing:
    """The capture never keeps ``chaperone run`` waiting for long after the child ended."""

    def test_a_grandchild_holding_the_pipe_does_not_hold_us(
        self, drains: tuple[Drain, Drain]
    ) -> None:
        """A child that exits leaving a silent process with its output open: the readers
        stop once the pipe stays quiet, well before that process ends."""
        out, err = drains
        capture = OutputCapture(OutputTail(), stdout=out.write, stderr=err.write)
        child = subprocess.Popen(
            ["sh", "-c", "sleep 30 & echo $!; echo done"],
            stdout=capture.child_stdout,
            stderr=capture.child_stderr,
        )
        capture.start()
        assert child.wait(20) == 0
        started = time.monotonic()
        try:
            assert capture.finish(limit=10)
            elapsed = time.monotonic() - started
        finally:
            grandchild = int(capture.tail.text().split()[0])
            os.kill(grandchild, signal.SIGKILL)
        assert elapsed < QUIET_AFTER_EXIT + 2.0
        assert capture.tail.text().endswith("done\n")
        out.close()
        err.close()

    def test_a_grandchild_that_keeps_writing_is_left_at_the_limit(
        self, drains: tuple[Drain, Drain], tmp_path: Path
    ) -> None:
        """A process left behind that keeps writing: finish stops the readers at its
        limit."""
        out, err = drains
        capture = OutputCapture(OutputTail(), stdout=out.write, stderr=err.write)
        pid_file = tmp_path / "pid"
        child = subprocess.Popen(
            ["sh", "-c", f"(while :; do echo spam; sleep 0.01; done) & echo $! > {pid_file}"],
            stdout=capture.child_stdout,
            stderr=capture.child_stderr,
        )
        capture.start()
        assert child.wait(20) == 0
        started = time.monotonic()
        try:
            finished = capture.finish(limit=0.5)
            elapsed = time.monotonic() - started
        finally:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        assert elapsed < 3.0
        assert finished  # told to stop, the readers did
        out.close()
        err.close()

    def test_a_child_closing_its_output_early_is_fine(self, drains: tuple[Drain, Drain]) -> None:
        """A child that closes its standard output and goes on writing to its error: both
        come through, and finishing is prompt."""
        out, err = drains
        capture = OutputCapture(OutputTail(), stdout=out.write, stderr=err.write)
        child = start(
            capture,
            "import os, sys, time\n"
            "print('first', flush=True); os.close(1)\n"
            "time.sleep(0.2); print('later', file=sys.stderr, flush=True)\n",
        )
        assert child.wait(20) == 0
        assert capture.finish(limit=5)
        assert out.close() == b"first\n"
        assert err.close() == b"later\n"

    def test_a_broken_pipe_of_ours_reaches_the_child(self) -> None:
        """When nobody reads our standard output any more, the child writing to it gets
        the broken pipe it would have got without the capture (it is killed by SIGPIPE)."""
        ours_read, ours_write = os.pipe()
        os.close(ours_read)
        err_read, err_write = os.pipe()
        capture = OutputCapture(OutputTail(), stdout=ours_write, stderr=err_write)
        child = start(
            capture,
            "import signal, sys\n"
            "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
            "while True: sys.stdout.write('x' * 4096); sys.stdout.flush()\n",
        )
        try:
            assert child.wait(20) == -signal.SIGPIPE
        finally:
            if child.poll() is None:
                child.kill()
        assert capture.finish(limit=5)
        os.close(ours_write)
        os.close(err_write)
        os.close(err_read)

    def test_close_without_a_child_closes_every_pipe(self) -> None:
        """A capture whose command never started leaves no descriptor open."""
        before = set(os.listdir("/proc/self/fd"))
        capture = OutputCapture(OutputTail())
        capture.close()
        capture.close()  # twice is harmless
        assert set(os.listdir("/proc/self/fd")) == before
