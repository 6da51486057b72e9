"""The README tells the truth: its tour runs as pasted, its links lead somewhere, its first
command installs and runs the main job, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.doc_examples import ROOT, Block, PageRun, blocks

README_PATH = ROOT / "README.md"
README = README_PATH.read_text(encoding="utf-8")
TOUR_LINES = 20


def section(title: str) -> str:
    """The text of the README's ``## title`` section."""
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def tour() -> list[Block]:
    """The code blocks of the tour."""
    return blocks(section("A tour"))


class TestReadme:
    def test_the_tour_runs(self, tmp_path: Path) -> None:
        """The tour's commands and Python run as pasted, in order, on a fresh store."""
        run = PageRun(README_PATH, tmp_path)
        for block in tour():
            run.run_block(block)
        assert run.ran == len(tour()) >= 2

    def test_the_tour_is_short(self) -> None:
        """The tour is a tour: at most twenty lines of code."""
        lines = [line for block in tour() for line in block.text.splitlines() if line.strip()]
        assert len(lines) <= TOUR_LINES

    @pytest.mark.parametrize("target", re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README))
    def test_link_leads_somewhere(self, target: str) -> None:
        """Each relative link of the README names a file of the repository."""
        assert (ROOT / target).exists(), target

    def test_ci_runs_the_readme_test_command(self) -> None:
        """.ci/run runs exactly the command the README gives for the tests."""
        (command,) = [block.text.strip() for block in blocks(section("Run the tests"))]
        assert command in (ROOT / ".ci/run").read_text(encoding="utf-8")

    def test_first_command_sends_test_alerts(self) -> None:
        """The README's first command installs and runs test-alerts on the default store."""
        first = blocks(README)[0]
        assert first.language == "bash"
        assert "pip install ." in first.text
        assert "chaperone test-alerts" in first.text
