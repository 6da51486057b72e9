"""The README tells the truth: its Python examples run, its TOML loads, and CI runs its
test command."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from chaperone.config import load_settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def clean_environ(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAPERONE_")}
    environ["CHAPERONE_STORE"] = f"sqlite:///{tmp_path / 'readme.sqlite3'}"
    environ["CHAPERONE_LOG_FORMAT"] = "json"
    return environ


class TestReadme:
    @pytest.mark.parametrize("index", range(len(blocks("python"))))
    def test_python_example_runs(self, index: int, tmp_path: Path) -> None:
        """Each Python example runs as pasted, on a fresh store, and exits 0."""
        source = blocks("python")[index]
        result = subprocess.run(
            [sys.executable, "-c", source],
            cwd=tmp_path,
            env=clean_environ(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    def test_there_are_python_examples(self) -> None:
        """The README shows Python at all (so the test above cannot pass by finding none)."""
        assert len(blocks("python")) >= 3

    @pytest.mark.parametrize("index", range(len(blocks("toml"))))
    def test_toml_example_loads(self, index: int, tmp_path: Path) -> None:
        """Each TOML example is a valid configuration."""
        (tmp_path / "chaperone.toml").write_text(blocks("toml")[index], encoding="utf-8")
        settings = load_settings(environ={}, cwd=tmp_path)
        assert settings.config_file == str(tmp_path / "chaperone.toml")

    def test_ci_runs_the_readme_test_command(self) -> None:
        """.ci/run runs exactly the command the README gives for the tests."""
        section = README.split("## Run the tests", 1)[1]
        command = re.search(r"```bash\n(.*?)\n```", section, re.S)
        assert command is not None
        assert command.group(1).strip() in (ROOT / ".ci/run").read_text(encoding="utf-8")

    def test_first_command_sends_test_alerts(self) -> None:
        """The README's first command installs and runs test-alerts on the default store."""
        first = blocks("bash")[0]
        assert "pip install ." in first
        assert "chaperone test-alerts" in first

    def test_alert_fatigue_commands_run(self, tmp_path: Path) -> None:
        """Each command of the alert-fatigue section runs as pasted and exits 0; the
        window it starts is listed by status and ended by end.
        """
        section = README.split("## Alert fatigue", 1)[1].split("\n## ", 1)[0]
        commands = re.search(r"```bash\n(.*?)```", section, re.S)
        assert commands is not None
        lines = [line.split("#", 1)[0].strip() for line in commands.group(1).splitlines()]
        lines = [line for line in lines if line]
        assert len(lines) == 4
        environ = clean_environ(tmp_path)
        outputs = []
        for line in lines:
            if line.startswith("chaperone route"):
                # The dry run reads the section's configuration (its channels need not be
                # installed: the route command warns, it does not fail).
                toml = re.search(r"```toml\n(.*?)```", section, re.S)
                assert toml is not None
                (tmp_path / "chaperone.toml").write_text(toml.group(1), encoding="utf-8")
            program, *arguments = shlex.split(line)
            assert program == "chaperone"
            result = subprocess.run(
                [str(Path(sys.executable).parent / program), *arguments],
                cwd=tmp_path,
                env=environ,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, (line, result.stderr)
            outputs.append(result.stdout)
        assert "deploy" in outputs[1]
        assert "0 alerts suppressed" in outputs[2]
        assert "Priority: high" in outputs[3]
        assert "route 'critical' matched" in outputs[3]
