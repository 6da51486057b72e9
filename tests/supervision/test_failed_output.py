"""The output of a failed run in ``job_failed``: kept (masked, its end) on the run's record
by ``Supervision.finish``, carried by ``JobFailed`` to the alert, shown there as the
"Output" field (masked again, cut to its last ``OUTPUT_LIMIT`` characters).

Runtimes are real (built-in plugins, the database channel keeping the history) on SQLite
files; time moves through a ManualClock; supervisors write inline.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chaperone import Chaperone, JobFailed, ManualClock, Secret
from chaperone._monitor import Monitor
from chaperone._secrets import MASK
from chaperone.builtin.alert_builder import OUTPUT_LIMIT, build_alerts
from chaperone.builtin.database_channel import read_history
from chaperone.supervision import JobRecord, JobState, Supervision, Supervisor
from chaperone.supervision._job import OUTPUT_LIMIT as RECORD_OUTPUT_LIMIT

START = datetime(2024, 1, 15, 3, 0, tzinfo=UTC)
JOB = "exports.nightly"
WEBHOOK = "https://hooks.example.test/services/T000/B000/failedOutputSecret42"


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock(START)


def failed_run(supervisor: Supervisor, output: str | None, *, fail: bool = True) -> JobRecord:
    """One run of :data:`JOB` that asks for failure alerts and ends with ``output``."""
    job = Supervision(
        supervisor,
        JobRecord(
            supervision_id=f"run-{supervisor.clock.timestamp()}",
            name=JOB,
            started_at=supervisor.clock.timestamp(),
            alert_on_failure=True,
        ),
    )
    job.start()
    job.finish("exit status 3" if fail else None, output=output)
    return job.record


def event(output: str | None) -> JobFailed:
    """A failed run's event with ``output``."""
    return JobFailed(
        supervision_id="run-1",
        job_class=JOB,
        error="exit status 3",
        duration=timedelta(seconds=3),
        output=output,
        occurred_at=START,
    )


class TestRecord:
    """What ``Supervision.finish`` keeps of the output on the run's record."""

    def test_a_failed_run_keeps_its_masked_end(self, supervisor: Supervisor) -> None:
        """A failed run's record holds the end of its output, a known secret masked, at
        most RECORD_OUTPUT_LIMIT characters, its last line whole."""
        Secret(WEBHOOK)
        lines = [f"row {n} exported" for n in range(500)]
        output = "\n".join([*lines[:-1], f"posting to {WEBHOOK}", lines[-1]]) + "\n"
        record = failed_run(supervisor, output)
        assert record.state is JobState.FAILED
        assert record.output is not None
        assert len(record.output) <= RECORD_OUTPUT_LIMIT
        assert record.output.endswith("row 499 exported\n")
        assert f"posting to {MASK}" in record.output
        assert "failedOutputSecret42" not in record.output
        assert record.output.startswith("… [")

    def test_a_successful_run_keeps_none(self, supervisor: Supervisor) -> None:
        """A run that succeeded keeps no output on its record."""
        record = failed_run(supervisor, "all went well\n", fail=False)
        assert record.state is JobState.COMPLETED
        assert record.output is None

    def test_blank_output_is_none(self, supervisor: Supervisor) -> None:
        """Output of nothing but white space is kept as none."""
        assert failed_run(supervisor, " \n\n").output is None

    def test_the_record_round_trips_through_json(self) -> None:
        """A record with output reads back equal from the store's JSON."""
        record = JobRecord(supervision_id="r", name=JOB, started_at=1.0, output="a\nb\n")
        assert JobRecord.from_json(record.to_json()) == record

    def test_a_newer_versions_record_reads_without_its_new_fields(self) -> None:
        """A record a newer version wrote, with a field this one lacks, still reads (as
        the output field was new to older versions), so two versions share a store."""
        record = JobRecord(supervision_id="r", name=JOB, started_at=1.0)
        newer = json.dumps({**json.loads(record.to_json()), "a_later_field": [1, 2]})
        assert JobRecord.from_json(newer) == record


class TestEvent:
    """The queued ``JobFailed`` carries the record's output to the monitor."""

    def test_the_alert_shows_the_output(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """A failed run with output delivers job_failed whose Output field ends with the
        run's last line, beside its exit status."""
        failed_run(supervisor, "step 1\nstep 2\nTraceback: boom\n")
        Monitor(runtime).tick()
        [alert] = [a for a in read_history(runtime.store, 100) if a["type"] == "job_failed"]
        assert alert["fields"]["Error"] == "exit status 3"
        assert alert["fields"]["Output"] == "step 1\nstep 2\nTraceback: boom"

    def test_without_output_there_is_no_field(
        self, runtime: Chaperone, supervisor: Supervisor
    ) -> None:
        """A failed run without captured output has no Output field."""
        failed_run(supervisor, None)
        Monitor(runtime).tick()
        [alert] = [a for a in read_history(runtime.store, 100) if a["type"] == "job_failed"]
        assert "Output" not in alert["fields"]


class TestAlertField:
    """The alert's Output field, from any output."""

    @pytest.mark.parametrize("output", [None, "", " \n\t\n"])
    def test_no_field_for_no_output(self, runtime: Chaperone, output: str | None) -> None:
        """No output, or only white space, gives no Output field."""
        [alert] = build_alerts(event(output), runtime)
        assert "Output" not in dict(alert.fields)

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        before=st.text(max_size=3000),
        password=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=20),
        after=st.text(
            alphabet=st.characters(exclude_categories=["Cc", "Cf", "Cs", "Zl", "Zp"]), max_size=300
        ),
    )
    def test_any_output_is_bounded_masked_and_ends_as_it_ended(
        self, runtime: Chaperone, before: str, password: str, after: str
    ) -> None:
        """Whatever the output, its field is at most OUTPUT_LIMIT characters, a URL's
        password in it never shows, and the field ends as the output did."""
        assume(password not in before and password not in after)
        output = f"{before}\nconnecting to https://deploy:{password}@db.internal/x\n{after}X"
        [alert] = build_alerts(event(output), runtime)
        shown = dict(alert.fields)["Output"]
        assert len(shown) <= OUTPUT_LIMIT
        assert password not in shown
        assert shown.endswith(after + "X")
        if len(after) < 100:
            assert f"connecting to https://{MASK}@db.internal/x" in shown

    def test_a_traceback_shows_whole_on_every_channel(self, runtime: Chaperone) -> None:
        """The end of a long Python traceback (underscores, angle brackets and ampersands
        that channels escape) shows whole, its last line included, in Slack's and
        Discord's field and Opsgenie's detail."""
        frame = '  File "/srv/app/__main__.py", line 12, in <module> & run_export()\n'
        output = frame * 200 + "RuntimeError: the <warehouse> is locked\n"
        [alert] = build_alerts(event(output), runtime)
        last = "RuntimeError: the <warehouse> is locked"
        slack = pytest.importorskip("chaperone_slack")
        [attachment] = slack.render(alert)["attachments"]
        [shown] = [f["value"] for f in attachment["fields"] if f["title"] == "Output"]
        assert shown.endswith("RuntimeError: the &lt;warehouse&gt; is locked")
        discord = pytest.importorskip("chaperone_discord")
        embed_fields = [f for e in discord.render(alert)["embeds"] for f in e.get("fields", [])]
        [shown] = [f["value"] for f in embed_fields if f["name"] == "Output"]
        assert shown.endswith(discord_escaped(last))
        opsgenie = pytest.importorskip("chaperone_opsgenie._render")
        assert opsgenie.details_for(alert)["Output"].endswith(last)


def discord_escaped(text: str) -> str:
    """``text`` as the Discord renderer escapes it."""
    from chaperone_discord._render import escape_markdown

    return escape_markdown(text)
