"""Whatever a job or an alert holds, every page renders it escaped: no markup from the
data reaches the HTML (property tests over hostile texts).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import attrs
import markupsafe
import pytest
from hypothesis import given
from hypothesis import strategies as st

import helpers.web_pages
from chaperone._alerts import Alert
from chaperone._clock import ManualClock
from chaperone.builtin.database_channel import record_delivery
from chaperone.config import Settings
from chaperone.schedules import Schedule, pause
from chaperone.store import SQLiteStore
from chaperone.supervision import JobRecord, Supervisor
from chaperone.testing import strategies
from chaperone.web.pages._links import Links

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
OUR_SCRIPT = '<script src="/chaperone/static/refresh.js" defer></script>'
INJECTED = "<script>alert(1)</script>"
links = Links(helpers.web_pages.PREFIX)


def hostile(max_length: int = 300) -> st.SearchStrategy[str]:
    """Hostile text with a script tag somewhere in it."""
    return st.builds(
        lambda before, after: f"{before}{INJECTED}{after}",
        strategies.hostile_texts(max_length=max_length),
        strategies.hostile_texts(max_length=max_length),
    )


@attrs.define
class Shared:
    """One store and one app for every example (each example writes a job of its own)."""

    store: SQLiteStore
    clock: ManualClock
    client: helpers.web_pages.PageClient
    incidents: list[helpers.web_pages.StandInIncident]
    context: helpers.web_pages.StandInContext


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    clock = ManualClock(START)
    path = tmp_path_factory.mktemp("escaping") / "chaperone.db"
    store = SQLiteStore(path, clock, f"sqlite:///{path}")
    incidents: list[helpers.web_pages.StandInIncident] = []
    context = helpers.web_pages.StandInContext(settings=Settings(), clock=clock, opened=store)
    visitor = helpers.web_pages.Visitor(name="ada", role="responder")
    with pytest.MonkeyPatch.context() as monkeypatch:
        app = helpers.web_pages.page_app(context, monkeypatch, visitor, lambda: incidents)
        yield Shared(store, clock, helpers.web_pages.PageClient(app), incidents, context)
    store.close()


def assert_escaped(html: str) -> None:
    """No script tag in ``html`` but the page's own."""
    assert INJECTED not in html
    assert "<script" not in html.replace(OUR_SCRIPT, "").lower()


class TestEscaping:
    @given(
        name=hostile(),
        error=hostile(),
        metadata=st.dictionaries(hostile(40), hostile(), max_size=3),
        alert=strategies.hostile_alerts(max_length=2000),
        title=hostile(),
    )
    def test_any_job_and_alert_render_escaped(
        self,
        shared: Shared,
        name: str,
        error: str,
        metadata: dict[str, str],
        alert: Alert,
        title: str,
    ) -> None:
        """A job with any name (and a paused schedule), error, output and metadata, an
        alert with any text about it, and an incident with any title: the job page, the
        lists, the overview, the schedules and the incident page render (200) and show
        the texts escaped; the schedule's links quote the name whole."""
        record = JobRecord(
            supervision_id=str(uuid.uuid4()),
            name=name,
            started_at=shared.clock.timestamp(),
            state="failed",
            finished_at=shared.clock.timestamp(),
            error=error,
            metadata=metadata,
            output=error,
        )
        Supervisor(shared.store, shared.clock, background=False).write(record)
        about = attrs.evolve(alert, key=record.supervision_id, title=f"{alert.title}{INJECTED}")
        record_delivery(
            shared.store,
            shared.clock,
            alert=about,
            channel="slack",
            route="default",
            status="failed",
            detail=error,
            max_len=50,
        )
        shared.incidents[:] = [
            helpers.web_pages.StandInIncident(
                type=about.type,
                key=about.key,
                title=title,
                summary=about.summary,
                opened_at=START,
                last_alert_at=START,
                fields=dict(about.fields),
                ack_note=title,
                acknowledged_by=name,
                acknowledged_at=START,
            )
        ]
        # The job's name as its record keeps it (valid and printable, as the store needs).
        shared.context.settings = Settings(schedules=(Schedule(job=record.name, cron="@daily"),))
        pause(shared.store, record.name, shared.clock.now())
        pages = [
            f"/jobs/{record.supervision_id}",
            "/",
            "/jobs",
            "/history",
            f"/incidents/{about.type}/{about.key}",
            "/schedules",
        ]
        for path in pages:
            response = shared.client.get(f"{helpers.web_pages.PREFIX}{path}")
            assert response.status_code == 200, path
            assert_escaped(response.text)
        job_html = shared.client.get(f"{helpers.web_pages.PREFIX}{pages[0]}").text
        assert str(markupsafe.escape(record.name)) in job_html
        schedules_html = shared.client.get(f"{helpers.web_pages.PREFIX}/schedules").text
        job_list = markupsafe.escape(links.jobs(name=record.name))
        assert f'<td><a href="{job_list}">' in schedules_html
        resume = markupsafe.escape(links.resume_schedule(record.name))
        assert f'action="{resume}"' in schedules_html
        assert f'action="{resume}"' in job_html


class TestOutput:
    def test_a_failed_runs_output_shows_as_written(self, shared: Shared) -> None:
        """A failed run's output shows in a ``<pre>`` on its page, its lines kept and its
        markup escaped; a job without output has no such block."""
        with_output, without = (
            JobRecord(
                supervision_id=str(uuid.uuid4()),
                name="exports.nightly",
                started_at=shared.clock.timestamp(),
                state="failed",
                finished_at=shared.clock.timestamp(),
                error="exit status 3",
                output=output,
            )
            for output in ("row 1 <b>\nrow 2 & done\n", None)
        )
        writer = Supervisor(shared.store, shared.clock, background=False)
        writer.write(with_output)
        writer.write(without)
        shown = shared.client.get(f"{helpers.web_pages.PREFIX}/jobs/{with_output.supervision_id}")
        assert '<pre class="output">row 1 &lt;b&gt;\nrow 2 &amp; done\n</pre>' in shown.text
        bare = shared.client.get(f"{helpers.web_pages.PREFIX}/jobs/{without.supervision_id}")
        assert bare.status_code == 200
        assert 'class="output"' not in bare.text
