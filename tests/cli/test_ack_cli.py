"""``chaperone ack`` and ``chaperone incidents`` through the real command line: an
incident opened by a real runtime on a SQLite file, listed, acknowledged (passed on to
the ``log`` channel, which carried it), acknowledged again (told who was first), undone,
and an unknown incident refused with exit 1.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from chaperone import Chaperone, JobStuck
from chaperone.cli.ack import login_name
from helpers.cli import clean_environ, run_cli, stored_history

SID = "7e4b2a90-1c3d-4f5e-8a6b-9d0c1e2f3a4b"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """A folder whose store holds one open job_stuck incident, carried by ``log`` and
    ``database``.
    """
    env = clean_environ(tmp_path, CHAPERONE_ALERT_CHANNELS="log,database")
    with Chaperone.from_environment(env, tmp_path, setup_logging=False) as runtime:
        report = runtime.dispatch(
            JobStuck(
                supervision_id=SID,
                job_class="App\\Jobs\\ImportFeed",
                stuck_duration=timedelta(minutes=30),
            )
        )
    assert report.alerts[0].delivered
    return env


class TestIncidents:
    def test_lists_the_open_incident(self, environ: dict[str, str], tmp_path: Path) -> None:
        """``--json`` lists the incident, firing, with where it went; the table names it."""
        listed = run_cli("incidents", "--json", cwd=tmp_path, env=environ)
        assert listed.returncode == 0, listed
        (incident,) = json.loads(listed.stdout)
        assert (incident["type"], incident["key"], incident["state"]) == (
            "job_stuck",
            SID,
            "firing",
        )
        assert incident["alerts"] == 1
        assert incident["delivered_to"] == ["database", "log"]
        table = run_cli("incidents", cwd=tmp_path, env=environ)
        assert table.returncode == 0, table
        assert SID in table.stdout
        assert "firing" in table.stdout


class TestAck:
    def test_acknowledge_again_undo(self, environ: dict[str, str], tmp_path: Path) -> None:
        """Acknowledged by alice (passed on to log); bob is told alice was first; the undo
        is passed on too; the history has both, with who and the note.
        """
        acked = run_cli(
            "ack", SID, "--type", "job_stuck", "--note", "on it", "--by", "alice",
            cwd=tmp_path, env=environ,
        )  # fmt: skip
        assert acked.returncode == 0, acked
        assert f"job_stuck:{SID}" in acked.stdout
        assert "acknowledged by alice" in acked.stdout
        assert "passed on to:\n  log: delivered" in acked.stdout
        assert "[ACKNOWLEDGED]" in acked.stdout + acked.stderr

        again = run_cli("ack", SID, "--type", "job_stuck", "--by", "bob", cwd=tmp_path, env=environ)
        assert again.returncode == 0, again
        assert "was already acknowledged by alice" in again.stdout

        listed = json.loads(run_cli("incidents", "--json", cwd=tmp_path, env=environ).stdout)
        assert [(i["state"], i["acknowledged_by"], i["ack_note"]) for i in listed] == [
            ("acknowledged", "alice", "on it")
        ]

        undone = run_cli(
            "ack", SID, "--type", "job_stuck", "--undo", "--json", cwd=tmp_path, env=environ
        )
        assert undone.returncode == 0, undone
        outcome = json.loads(undone.stdout)
        assert (outcome["action"], outcome["changed"]) == ("unacknowledged", True)
        assert outcome["incident"]["state"] == "firing"
        assert [(p["channel"], p["status"]) for p in outcome["passed_on"]] == [("log", "delivered")]

        actions = [
            (record["status"], record["by"], record["note"])
            for record in stored_history(tmp_path)
            if record["status"] in {"acknowledged", "unacknowledged"}
        ]
        assert actions == [("unacknowledged", login_name(), ""), ("acknowledged", "alice", "on it")]

    def test_by_defaults_to_the_login_name(self, environ: dict[str, str], tmp_path: Path) -> None:
        """Without ``--by`` the acknowledgement is the login name's."""
        acked = run_cli("ack", SID, "--type", "job_stuck", "--json", cwd=tmp_path, env=environ)
        assert acked.returncode == 0, acked
        assert json.loads(acked.stdout)["incident"]["acknowledged_by"] == login_name()

    def test_an_unknown_incident_exits_1(self, environ: dict[str, str], tmp_path: Path) -> None:
        """A key or type with no open incident: one clear line on stderr, exit 1."""
        for args in (("no-such-job", "--type", "job_stuck"), (SID, "--type", "job_timeout")):
            refused = run_cli("ack", *args, cwd=tmp_path, env=environ)
            assert refused.returncode == 1, refused
            assert "no open incident" in refused.stderr
            assert "chaperone incidents" in refused.stderr
            assert "Traceback" not in refused.stderr
            assert refused.stdout == ""

    def test_type_is_required(self, environ: dict[str, str], tmp_path: Path) -> None:
        """Without ``--type`` the command line is wrong: exit 2."""
        refused = run_cli("ack", SID, cwd=tmp_path, env=environ)
        assert refused.returncode == 2, refused
        assert "--type" in refused.stderr
