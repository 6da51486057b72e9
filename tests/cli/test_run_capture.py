"""``chaperone run`` capturing its command's output, with the real console script and real
children: the output passes through unchanged, a failed run's ``job_failed`` alert on a
loopback webhook carries its end with secrets masked, memory stays flat however much the
command prints, and ``--no-capture-output`` (or the setting) leaves the command on our own
file descriptors.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chaperone.builtin.alert_builder import OUTPUT_LIMIT
from helpers.alert_webhook import AlertWebhook
from helpers.cli import CHAPERONE, clean_environ, require_fixture_plugins, run_cli, stored_jobs

JOB = "exports.nightly"

PRINT_AND_FAIL = """
import sys, time
url = sys.argv[1]
for n in range(200):
    print(f"exported row {n}")
sys.stdout.flush()
time.sleep(0.2)  # the two streams are two pipes: one at a time keeps their order
print(f"posting the summary to {url}", file=sys.stderr, flush=True)
time.sleep(0.2)
print("export failed: the warehouse is locked", flush=True)
sys.exit(3)
"""


def chaperone(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Run ``chaperone *args`` with byte-exact standard output and error."""
    return subprocess.run(
        [str(CHAPERONE), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def failed_alerts(folder: Path) -> list[dict[str, Any]]:
    """The job_failed alerts the database channel recorded, oldest first."""
    history = run_cli("history", "--json", cwd=folder, env=clean_environ(folder))
    assert history.returncode == 0, str(history)
    records = reversed(history.json())
    return [r for r in records if r["type"] == "job_failed" and r["channel"] == "database"]


class TestFailedRunAlert:
    """A failed run's job_failed carries the end of its output."""

    def test_the_webhook_gets_the_last_lines_and_no_secret(self, tmp_path: Path) -> None:
        """A command printing 200 lines, the webhook's own URL, then a last line, and
        exiting 3 gives job_failed on that webhook with exit status 3 and an Output
        ending with the last lines, the URL masked in it and nowhere in any alert."""
        require_fixture_plugins()
        with AlertWebhook() as webhook:
            env = clean_environ(
                tmp_path,
                CHAPERONE_ALERT_CHANNELS="log,database,webhook",
                CHAPERONE_WEBHOOK_URL=webhook.url,
                CHAPERONE_ALERT_GROUPING="false",
            )
            ran = chaperone(
                "run", "--name", JOB, "--alert-on-failure", "--",
                sys.executable, "-c", PRINT_AND_FAIL, webhook.url,
                cwd=tmp_path, env=env,
            )  # fmt: skip
            assert ran.returncode == 3, ran.stderr.decode(errors="replace")
            assert webhook.wait_for(lambda seen: len(seen) >= 1, timeout=10)
            [seen] = [s for s in webhook.seen if s.type == "job_failed"]
            bodies = json.dumps([body for _, body in webhook.bodies])
        assert seen.fields["Error"] == "exit status 3"
        output = seen.fields["Output"]
        assert output.endswith("exported row 199\nposting the summary to ********\n"
                               "export failed: the warehouse is locked")  # fmt: skip
        assert output.startswith("… [")  # its start cut, the cut said
        assert len(output) <= OUTPUT_LIMIT
        assert webhook.url not in bodies
        [job] = stored_jobs(tmp_path)
        assert webhook.url not in json.dumps(job)
        assert job["output"].endswith("to ********\nexport failed: the warehouse is locked\n")

    def test_the_record_keeps_the_output(self, tmp_path: Path) -> None:
        """The failed run's record (the job page's, `chaperone jobs --json`'s) holds the
        end of its output too."""
        env = clean_environ(tmp_path)
        ran = chaperone(
            "run", "--name", JOB, "--", "sh", "-c", "echo one; sleep 0.2; echo two >&2; exit 1",
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert ran.returncode == 1
        [job] = stored_jobs(tmp_path)
        assert job["output"] == "one\ntwo\n"

    def test_a_successful_run_keeps_no_output(self, tmp_path: Path) -> None:
        """A run that succeeds raises nothing and keeps no output."""
        env = clean_environ(tmp_path)
        ran = chaperone("run", "--alert-on-failure", "--", "echo", "fine", cwd=tmp_path, env=env)
        assert ran.returncode == 0
        assert ran.stdout == b"fine\n"
        assert failed_alerts(tmp_path) == []


class TestPassThrough:
    """What the command writes is what ``chaperone run`` writes."""

    WRITER = (
        "import sys, time\n"
        "out, err = sys.stdout.buffer, sys.stderr.buffer\n"
        "out.write(bytes(range(256))); out.flush()\n"
        "err.write(b'err \\xff\\xfe\\r\\n'); err.flush()\n"
        "time.sleep(0.05)\n"
        "out.write(b'no newline at the end'); out.flush()\n"
        "sys.exit(int(sys.argv[1]))\n"
    )

    @pytest.mark.parametrize("capture", ["--capture-output", "--no-capture-output"])
    @pytest.mark.parametrize("status", [0, 4])
    def test_bytes_come_through_unchanged(self, tmp_path: Path, capture: str, status: int) -> None:
        """Standard output is exactly the command's, byte for byte, and standard error
        holds the command's bytes unchanged, with and without capture, failing or not."""
        env = clean_environ(tmp_path, CHAPERONE_DISABLE_PLUGINS="broken")
        ran = chaperone(
            "run", capture, "--alert-on-failure", "--",
            sys.executable, "-c", self.WRITER, str(status),
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert ran.returncode == status
        assert ran.stdout == bytes(range(256)) + b"no newline at the end"
        assert b"err \xff\xfe\r\n" in ran.stderr

    def test_a_command_that_closes_its_output_early_is_fine(self, tmp_path: Path) -> None:
        """A command that closes its standard output and runs on ends its run as usual,
        with its status."""
        env = clean_environ(tmp_path)
        code = "import os, time; print('bye', flush=True); os.close(1); time.sleep(0.5); exit(2)"
        ran = chaperone("run", "--", sys.executable, "-c", code, cwd=tmp_path, env=env)
        assert ran.returncode == 2
        assert ran.stdout == b"bye\n"

    def test_a_process_left_holding_the_output_does_not_hang_the_run(self, tmp_path: Path) -> None:
        """A command that exits leaving a process with its output open: the run ends within
        seconds, not when that process does."""
        env = clean_environ(tmp_path)
        pid_file = tmp_path / "pid"
        started = time.monotonic()
        try:
            ran = chaperone(
                "run", "--alert-on-failure", "--",
                "sh", "-c", f"sleep 60 & echo $! > {pid_file}; echo left; exit 5",
                cwd=tmp_path, env=env, timeout=50,
            )  # fmt: skip
            elapsed = time.monotonic() - started
        finally:
            if pid_file.exists():
                os.kill(int(pid_file.read_text()), 9)
        assert ran.returncode == 5
        assert ran.stdout == b"left\n"
        assert elapsed < 30
        [alert] = failed_alerts(tmp_path)
        assert alert["fields"]["Output"] == "left"


class TestMemory:
    """Memory stays flat however much the command prints."""

    @staticmethod
    def peak_rss_mb(folder: Path, megabytes: int) -> tuple[float, list[dict[str, Any]], int]:
        """Run ``chaperone run`` of a command printing ``megabytes`` MB then a last line
        and failing, its output into a file, from a fresh Python that reports the peak
        resident size of its children (chaperone run and the printer, which stays small).
        Return that peak in MB, the job_failed alerts, and the file's size.
        """
        out = folder / "out.bin"
        printer = (
            "import sys\n"
            "w = sys.stdout.buffer.write\n"
            "line = b'x' * 1023 + b'\\n'\n"
            f"for _ in range({megabytes} * 1024): w(line)\n"
            "w(b'the very end\\n'); sys.stdout.flush(); sys.exit(1)\n"
        )
        wrapper = (
            "import resource, subprocess, sys\n"
            "with open(sys.argv[1], 'wb') as out:\n"
            "    code = subprocess.call(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL)\n"
            "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        )
        env = clean_environ(folder)
        command: Sequence[str] = (
            str(CHAPERONE), "run", "--name", JOB, "--alert-on-failure", "--",
            sys.executable, "-c", printer,
        )  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-c", wrapper, str(out), *command],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        code, peak_kb = result.stdout.split()
        assert int(code) == 1
        return int(peak_kb) / 1024, failed_alerts(folder), out.stat().st_size

    def test_tens_of_megabytes_keep_memory_flat_and_the_tail_is_the_end(
        self, tmp_path: Path
    ) -> None:
        """Printing 64 MB peaks within 24 MB of printing 1 MB (runs differ by up to about
        12 MB whatever they print; keeping the output would add 64), every byte comes
        through, and the alert's output is the end of it."""
        (tmp_path / "small").mkdir()
        (tmp_path / "large").mkdir()
        small, _, small_size = self.peak_rss_mb(tmp_path / "small", 1)
        large, alerts, large_size = self.peak_rss_mb(tmp_path / "large", 64)
        assert small_size == 1024 * 1024 + len(b"the very end\n")
        assert large_size == 64 * 1024 * 1024 + len(b"the very end\n")
        assert large - small < 24, (small, large)
        [alert] = alerts
        assert alert["fields"]["Output"].endswith("x" * 100 + "\nthe very end")


class TestTurningItOff:
    """``--no-capture-output`` and the ``supervision.capture_output`` setting."""

    SHOW_STDOUT = (
        "import os, stat, sys\n"
        "mode = os.fstat(1).st_mode\n"
        "print('pipe' if stat.S_ISFIFO(mode) else 'file', os.fstat(1).st_ino, flush=True)\n"
        "sys.exit(3)\n"
    )

    def run_into_file(self, folder: Path, *options: str) -> tuple[str, int]:
        """Run SHOW_STDOUT under ``chaperone run *options`` with standard output a file;
        return what the command said its standard output was, and the file's inode."""
        out = folder / "out.txt"
        with out.open("wb") as handle:
            subprocess.run(
                [str(CHAPERONE), "run", "--alert-on-failure", *options, "--",
                 sys.executable, "-c", self.SHOW_STDOUT],
                cwd=folder, env=clean_environ(folder), stdout=handle,
                stderr=subprocess.DEVNULL, timeout=120, check=False,
            )  # fmt: skip
        return out.read_text(), out.stat().st_ino

    def test_no_capture_leaves_our_file_and_no_output_field(self, tmp_path: Path) -> None:
        """With --no-capture-output the command writes to our very file (not a pipe), and
        its job_failed has no Output field."""
        said, inode = self.run_into_file(tmp_path, "--no-capture-output")
        assert said == f"file {inode}\n"
        [alert] = failed_alerts(tmp_path)
        assert alert["fields"]["Error"] == "exit status 3"
        assert "Output" not in alert["fields"]

    @pytest.mark.parametrize(
        ("option", "isatty"), [("--no-capture-output", True), ("--capture-output", False)]
    )
    def test_a_terminal_stays_a_terminal_without_capture(
        self, tmp_path: Path, option: str, isatty: bool
    ) -> None:
        """On a terminal, --no-capture-output leaves the command on that terminal; with
        capture it writes into a pipe."""
        primary, secondary = pty.openpty()
        try:
            process = subprocess.Popen(
                [str(CHAPERONE), "run", option, "--",
                 sys.executable, "-c", "import os; print(os.isatty(1), flush=True)"],
                cwd=tmp_path, env=clean_environ(tmp_path), stdin=subprocess.DEVNULL,
                stdout=secondary, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            os.close(secondary)
            said = bytearray()
            deadline = time.monotonic() + 60
            while process.poll() is None or not said.strip():
                ready, _, _ = select.select([primary], [], [], 0.1)
                if ready:
                    try:
                        said += os.read(primary, 1024)
                    except OSError:
                        break  # the terminal's other side closed
                assert time.monotonic() < deadline, bytes(said)
            assert process.wait(60) == 0
        finally:
            os.close(primary)
        assert said.strip() == str(isatty).encode()

    def test_capture_by_default_goes_through_a_pipe(self, tmp_path: Path) -> None:
        """By default the command writes into a pipe, and its output is in the alert."""
        said, _ = self.run_into_file(tmp_path)
        assert said.startswith("pipe ")
        [alert] = failed_alerts(tmp_path)
        assert alert["fields"]["Output"] == said.strip()

    def test_the_setting_turns_it_off_and_the_option_back_on(self, tmp_path: Path) -> None:
        """`[supervision] capture_output = false` leaves the command on our file; the
        command line's --capture-output wins over it."""
        (tmp_path / "chaperone.toml").write_text(
            "[supervision]\ncapture_output = false\n", encoding="utf-8"
        )
        said, inode = self.run_into_file(tmp_path)
        assert said == f"file {inode}\n"
        said, _ = self.run_into_file(tmp_path, "--capture-output")
        assert said.startswith("pipe ")
        outputs = [alert["fields"].get("Output") for alert in failed_alerts(tmp_path)]
        assert outputs == [None]  # the second failure belongs to the open incident

    def test_a_bad_setting_is_named(self, tmp_path: Path) -> None:
        """A value that is not a boolean stops the run before the command, naming the
        variable."""
        env = clean_environ(tmp_path, CHAPERONE_CAPTURE_OUTPUT="sometimes")
        ran = run_cli("run", "--", "true", cwd=tmp_path, env=env)
        assert ran.returncode != 0
        assert "CHAPERONE_CAPTURE_OUTPUT" in ran.stderr
