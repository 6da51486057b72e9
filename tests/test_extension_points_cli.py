"""The extension points a plugin that is not a channel uses, through the real CLI: its
own event queued by a job process and delivered by ``chaperone monitor``, its settings
(``[plugins.testextend]``), its store (``memo2://``) and its command.

Needs the fixture plugin chaperone-testextend (tests/fixtures/plugins) installed, as the
other fixture plugins are (see ``helpers.cli.INSTALL_LINE``). Plugins that misbehave on
purpose are put on ``PYTHONPATH`` with a ``.dist-info`` folder of their own, so their
entry points are found as an installed plugin's are, in that subprocess only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import (
    clean_environ,
    require_fixture_plugins,
    run_cli,
    stored_history,
)

TIMEOUT = 60.0

JOB_PROCESS = """
from chaperone.supervision import default_supervisor
from chaperone_testextend import DeploymentFinished

queued = default_supervisor().emit(DeploymentFinished(service="billing", version="1.2.3"))
print("queued" if queued else "not queued", flush=True)
"""


@pytest.fixture(autouse=True)
def _fixture_plugins() -> None:
    require_fixture_plugins()


def install_on_path(site: Path, distribution: str, module: str, source: str) -> None:
    """Make ``module`` (``source``) an installed plugin named like its distribution's
    last word, for processes with ``site`` on their ``PYTHONPATH``."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n", encoding="utf-8"
    )
    name = distribution.removeprefix("chaperone-")
    (info / "entry_points.txt").write_text(f"[chaperone]\n{name} = {module}\n", encoding="utf-8")


class TestPluginEvents:
    def test_a_queued_plugin_event_reaches_the_channel_through_the_monitor(
        self, tmp_path: Path
    ) -> None:
        """A job process queues the plugin's own event; `chaperone monitor --once` in
        another process decodes it and delivers the alert the plugin builds, titled with
        the plugin's configured greeting."""
        (tmp_path / "chaperone.toml").write_text(
            '[alerting]\nchannels = ["database"]\n\n[plugins.testextend]\ngreeting = "Shipped"\n',
            encoding="utf-8",
        )
        env = clean_environ(tmp_path)
        job = subprocess.run(
            [sys.executable, "-c", JOB_PROCESS],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert (job.returncode, job.stdout.strip()) == (0, "queued"), job.stderr
        found = run_cli("monitor", "--once", cwd=tmp_path, env=env, timeout=TIMEOUT)
        assert found.returncode == 0, str(found)
        assert "dropped an unreadable queued event" not in found.stderr
        [record] = [r for r in stored_history(tmp_path) if r["type"] == "deployment_finished"]
        assert record["key"] == "billing:1.2.3"
        assert record["title"] == "Shipped: billing 1.2.3"


class TestPluginSettings:
    def test_a_wrong_type_is_one_line_naming_the_setting_and_file(self, tmp_path: Path) -> None:
        """`[plugins.testextend] repeat = "often"` stops `config check` with exit 2 and
        one line naming the setting and the file."""
        config = tmp_path / "chaperone.toml"
        config.write_text('[plugins.testextend]\nrepeat = "often"\n', encoding="utf-8")
        result = run_cli("config", "check", cwd=tmp_path, env=clean_environ(tmp_path))
        assert result.returncode == 2, str(result)
        [line] = [line for line in result.stderr.splitlines() if "plugins.testextend" in line]
        assert line.strip() == (
            f"plugins.testextend.repeat (from {config}): expected a whole number, got 'often'"
        )

    def test_the_environment_overrides_the_file_and_the_command_reads_it(
        self, tmp_path: Path
    ) -> None:
        """The plugin's command sees `CHAPERONE_TESTEXTEND_REPEAT` over the file's value,
        and the file's greeting."""
        (tmp_path / "chaperone.toml").write_text(
            '[plugins.testextend]\ngreeting = "Hello"\nrepeat = 5\n', encoding="utf-8"
        )
        env = clean_environ(tmp_path, CHAPERONE_TESTEXTEND_REPEAT="2")
        result = run_cli("testextend-greet", "Ada", cwd=tmp_path, env=env)
        assert result.returncode == 0, str(result)
        assert result.stdout.splitlines() == ["Hello, Ada!", "Hello, Ada!"]

    def test_config_show_lists_the_settings_with_the_secret_masked(self, tmp_path: Path) -> None:
        """`config show --json` lists each field of the plugin's settings with its
        source; the secret token is masked and appears nowhere in the output."""
        (tmp_path / ".env").write_text(
            "CHAPERONE_TESTEXTEND_TOKEN=tok-1234-do-not-print\n", encoding="utf-8"
        )
        result = run_cli("config", "show", "--json", cwd=tmp_path, env=clean_environ(tmp_path))
        assert result.returncode == 0, str(result)
        rows = {row["setting"]: row for row in result.json()}
        assert rows["plugins.testextend.token"]["value"] == "********"
        assert rows["plugins.testextend.token"]["source"].endswith(".env")
        assert rows["plugins.testextend.repeat"] == {
            "setting": "plugins.testextend.repeat",
            "env": "CHAPERONE_TESTEXTEND_REPEAT",
            "value": 1,
            "source": "default",
        }
        assert "do-not-print" not in result.stdout + result.stderr

    def test_an_unknown_plugin_variable_suggests_the_field(self, tmp_path: Path) -> None:
        """`CHAPERONE_TESTEXTEND_GRETING` is a problem suggesting the field's variable."""
        env = clean_environ(tmp_path, CHAPERONE_TESTEXTEND_GRETING="Hi")
        result = run_cli("config", "check", cwd=tmp_path, env=env)
        assert result.returncode == 2, str(result)
        assert "did you mean CHAPERONE_TESTEXTEND_GREETING?" in result.stderr


class TestPluginStore:
    def test_a_memo2_store_is_written_and_read_back(self, tmp_path: Path) -> None:
        """With `CHAPERONE_STORE=memo2:////PATH`, `test-alerts` writes its history through
        the plugin's store, and `history` in another process reads it back."""
        database = tmp_path / "memo2.db"
        env = clean_environ(
            tmp_path, CHAPERONE_STORE=f"memo2:///{database}", CHAPERONE_ALERT_CHANNELS="database"
        )
        sent = run_cli("test-alerts", "--json", cwd=tmp_path, env=env)
        assert sent.returncode == 0, str(sent)
        assert database.is_file()
        history = run_cli("history", "--json", cwd=tmp_path, env=env)
        assert history.returncode == 0, str(history)
        assert len(history.json()) == len(sent.json()) >= 4

    def test_an_unknown_scheme_lists_the_installed_ones(self, tmp_path: Path) -> None:
        """`CHAPERONE_STORE=memo3://` is refused naming the installed schemes, the
        plugin's among them."""
        env = clean_environ(tmp_path, CHAPERONE_STORE="memo3://")
        result = run_cli("jobs", cwd=tmp_path, env=env)
        assert result.returncode == 2, str(result)
        assert "unsupported store scheme memo3://" in result.stderr
        assert "memo2://" in result.stderr
        assert "sqlite:///PATH" in result.stderr


CLASHING = """
import click
import chaperone

@chaperone.hookimpl
def chaperone_register_commands(cli):
    @cli.command("jobs")
    def jobs():
        click.echo("the plugin's jobs")
"""
RAISING = """
import chaperone

@chaperone.hookimpl
def chaperone_register_commands(cli):
    raise RuntimeError("no commands today")
"""


class TestPluginCommands:
    def test_the_command_is_in_help_and_runs(self, tmp_path: Path) -> None:
        """`chaperone --help` lists the plugin's command beside the built-in ones, and it
        runs."""
        env = clean_environ(tmp_path)
        listed = run_cli("--help", cwd=tmp_path, env=env)
        assert listed.returncode == 0, str(listed)
        assert "testextend-greet" in listed.stdout
        assert "heartbeat" in listed.stdout
        greeted = run_cli("testextend-greet", "Ada", cwd=tmp_path, env=env)
        assert (greeted.returncode, greeted.stdout) == (0, "Deployed, Ada!\n"), str(greeted)

    @pytest.fixture
    def misbehaving(self, tmp_path: Path) -> dict[str, str]:
        """An environment where two more plugins are installed: `clash` adds a command
        named like a built-in one, `raising`'s hook raises."""
        site = tmp_path / "site"
        install_on_path(site, "chaperone-clash", "chaperone_clash", CLASHING)
        install_on_path(site, "chaperone-raising", "chaperone_raising", RAISING)
        return clean_environ(tmp_path, PYTHONPATH=str(site))

    def test_a_clash_or_a_raising_hook_breaks_only_its_plugin(
        self, tmp_path: Path, misbehaving: dict[str, str]
    ) -> None:
        """`--help` still works and lists the other plugin's command; the built-in
        `jobs` wins; `chaperone plugins` lists both plugins broken, saying why."""
        listed = run_cli("--help", cwd=tmp_path, env=misbehaving)
        assert listed.returncode == 0, str(listed)
        assert "testextend-greet" in listed.stdout
        jobs = run_cli("jobs", "--json", cwd=tmp_path, env=misbehaving)
        assert (jobs.returncode, jobs.json()) == (0, []), str(jobs)
        plugins = run_cli("plugins", "--json", cwd=tmp_path, env=misbehaving)
        by_name = {entry["name"]: entry for entry in plugins.json()}
        assert by_name["clash"]["status"] == "broken"
        assert "command 'jobs' is a built-in command's name" in by_name["clash"]["error"]
        assert by_name["raising"]["status"] == "broken"
        assert "no commands today" in by_name["raising"]["error"]
        assert by_name["testextend"]["status"] == "ok"
