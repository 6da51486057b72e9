"""The benchmarks under bench/ still import what they measure (they run on demand, with
``nox -s bench``, not here): a renamed function breaks this test, not the next bench run."""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(BENCH.glob("bench_*.py"))


@pytest.fixture
def bench_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(BENCH))
    yield
    for name in [name for name in sys.modules if name.startswith(("bench_", "_summary", "_redis"))]:
        del sys.modules[name]


class TestBenchScripts:
    def test_there_are_six_or_more(self) -> None:
        """The six benchmarks of the issue are there (and this test can't pass on none)."""
        assert len(SCRIPTS) >= 6

    @pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
    @pytest.mark.usefixtures("bench_on_path")
    def test_imports_and_reports_one_summary(self, script: Path) -> None:
        """The script imports (every name it uses from chaperone exists), has a main(),
        and reports through the shared summary line."""
        module = importlib.import_module(script.stem)
        assert callable(module.main)
        calls = [
            node
            for node in ast.walk(ast.parse(script.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "summary"
        ]
        assert calls, f"{script.name} prints no summary line"
