"""A store that cannot be used ends a command with one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import clean_environ, run_cli, store_url


class TestUnusableStore:
    @pytest.mark.parametrize("args", [("history",), ("jobs",), ("maintenance", "status")])
    def test_one_line_and_exit_1(self, tmp_path: Path, args: tuple[str, ...]) -> None:
        """A SQLite path that is a directory: `store error: …` naming the file, exit 1."""
        folder = tmp_path / "not-a-file.db"
        folder.mkdir()
        result = run_cli(
            *args, cwd=tmp_path, env=clean_environ(tmp_path, CHAPERONE_STORE=store_url(folder))
        )
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr, result
        [line] = [line for line in result.stderr.splitlines() if line.startswith("store error")]
        assert "not-a-file.db" in line
