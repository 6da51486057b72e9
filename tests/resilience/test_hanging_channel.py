"""One slow part never delays another, timed: ``chaperone run`` against a Slack webhook
that accepts the connection and never answers, with PagerDuty working beside it (both
real channel plugins, pointed at loopback servers), the delivery settings left at their
defaults (10 s per send, 3 attempts, 5 s of exit grace).

Measured on main before this change: the job was stopped after 34 s instead of 3 s,
``chaperone run`` exited after 105 s, and PagerDuty got the alerts at +0.4 s, +34 s and
+68 s, each waiting out Slack's retries.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers.alert_webhook import AlertWebhook
from helpers.cli import clean_environ, start_cli, stored_jobs
from helpers.report import report

pytest.importorskip("chaperone_slack")
pytest.importorskip("chaperone_pagerduty")

LIMIT = 3.0
EXIT_GRACE = 5.0
ROUTING_KEY = "R0123456789abcdef0123456789ABCDE"


class Timeline:
    """When each line of a process's standard error arrived, and when it exited."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.exited = float("nan")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.monotonic() - self.started, line))

    def wait(self, timeout: float) -> int:
        """Wait for the exit (killing it past ``timeout``); its status."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"chaperone run ran over {timeout}s")
        self.exited = time.monotonic() - self.started
        self._reader.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code

    def when(self, text: str) -> float:
        """Seconds after the start at which a line holding ``text`` arrived."""
        for at, line in self.lines:
            if text in line:
                return at
        pytest.fail(f"no line with {text!r}:\n{''.join(line for _, line in self.lines)}")


def test_a_hanging_slack_delays_neither_the_limit_nor_pagerduty_nor_the_exit(
    tmp_path: Path,
) -> None:
    """The job is stopped within its limit + 1 s of its start; PagerDuty gets the stuck
    and the timeout alerts within a second or two of each; chaperone exits within twice
    its exit grace of stopping the job (its last alerts, then the deliveries in flight),
    leaving Slack's alerts in the outbox."""
    with AlertWebhook(hanging=True) as slack, AlertWebhook() as pagerduty:
        env = clean_environ(
            tmp_path,
            CHAPERONE_ALERT_CHANNELS="log,database,slack,pagerduty",
            CHAPERONE_SLACK_WEBHOOK_URL=slack.url,
            CHAPERONE_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
            CHAPERONE_PAGERDUTY_EVENTS_URL=pagerduty.url,
            CHAPERONE_LOG_FORMAT="json",
        )
        process = start_cli(
            [
                "run", "--name", "hung", "--heartbeat-interval", "0.3",
                "--missed-heartbeats", "2", "--timeout", str(LIMIT), "--kill-on-timeout",
                "--", "sleep", "60",
            ],
            cwd=tmp_path,
            env=env,
        )  # fmt: skip
        timeline = Timeline(process)
        status = timeline.wait(120)
        stopped = timeline.when("stopping the job")
        pager = [
            (at - timeline.started, body.get("payload", {}).get("summary", ""))
            for at, body in pagerduty.bodies
        ]
    stuck_logged = timeline.when("[FIRING] Job Stuck")
    timeout_logged = timeline.when("[FIRING] Job Timeout")
    paged = {summary: at for at, summary in reversed(pager)}
    stuck_paged = min(at for summary, at in paged.items() if "Stuck" in summary)
    timeout_paged = min(at for summary, at in paged.items() if "Timeout" in summary)
    [job] = stored_jobs(tmp_path)
    ran = float(job["duration"])
    report(
        f"hanging Slack: the job ran {ran:.2f}s (limit {LIMIT:g}s); chaperone stopped it at "
        f"+{stopped:.1f}s of its own start and exited at +{timeline.exited:.1f}s; PagerDuty "
        f"got stuck at +{stuck_paged:.1f}s, timeout at +{timeout_paged:.1f}s; Slack "
        f"requests: {len(slack.arrivals)}"
    )
    assert status == 143
    assert ran <= LIMIT + 1.0, job
    assert stuck_paged - stuck_logged < 2.0
    assert timeout_paged - timeout_logged < 2.0
    assert timeline.exited - stopped <= 2 * EXIT_GRACE + 1.0
    assert slack.seen == []  # it never answered: its alerts wait in the outbox
