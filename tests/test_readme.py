"""The README tells the truth: its Python examples run, its TOML loads, and CI runs its
test command."""

from __future__ import annotations

import os
import re
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
