"""The docs' example channel plugin (``docs/examples/chaperone-teams``) works as published:
its own tests pass, run the way its author runs them, and the entry point its
``pyproject.toml`` declares loads and provides the channel.

The example is never installed into this environment (other tests list the installed
plugins): its tests find it through pytest's ``pythonpath``, and the entry point is loaded
here from the source folder.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaperone import Channel, PluginHost
from helpers.doc_examples import DOCS, ROOT

EXAMPLE = DOCS / "examples" / "chaperone-teams"
SOURCE = EXAMPLE / "src"


def project() -> dict[str, Any]:
    """The example's ``pyproject.toml``."""
    return tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))


def example_environ() -> dict[str, str]:
    """This environment without ``CHAPERONE_*``, the example's source on the path, no
    bytecode written into the docs folder, and hypothesis's storage shared with the rest of
    the suite (in a fresh folder, it spends seconds rebuilding its Unicode tables).
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAPERONE_")}
    environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(ROOT / ".hypothesis"))
    environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(SOURCE), environ.get("PYTHONPATH", "")) if part
    )
    environ["PYTHONDONTWRITEBYTECODE"] = "1"
    return environ


@pytest.fixture
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example's source importable in this process (no bytecode written into the docs
    folder), and forgotten afterwards.
    """
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(SOURCE))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "chaperone_teams"]:
        del sys.modules[name]


class TestExampleTests:
    """The example's own test suite, run as its author runs it."""

    def test_its_doctests_and_tests_pass(self, tmp_path: Path) -> None:
        """``pytest --doctest-modules src tests`` in the example passes, with its contract
        suite, doctests and loopback test among what ran.
        """
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--doctest-modules",
                str(SOURCE),
                str(EXAMPLE / "tests"),
                "-rA",
            ],
            cwd=tmp_path,  # not the docs folder: nothing is written there
            env=example_environ(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        passed = re.search(r"(\d+) passed", result.stdout)
        assert passed is not None, output[-4000:]
        assert int(passed.group(1)) >= 10, output[-4000:]
        passed_ids = [
            line.removeprefix("PASSED ")
            for line in result.stdout.splitlines()
            if line.startswith("PASSED ")
        ]
        for expected in (
            "chaperone_teams/__init__.py::chaperone_teams.classify",
            "test_teams.py::TestTeamsContract::test_any_alert_is_delivered_to_a_healthy_service",
            "test_teams.py::TestTeamsContract::test_a_full_digest_reaches_the_service_whole",
            "test_teams.py::TestAgainstARealServer::test_alert_is_posted_as_a_card_after_a_429",
        ):
            assert any(test_id.endswith(expected) for test_id in passed_ids), (
                f"{expected!r} did not pass\n{output[-4000:]}"
            )


class TestEntryPoint:
    """What the example's ``pyproject.toml`` declares is there and loads."""

    def test_distribution_follows_the_naming_rule(self) -> None:
        """The distribution is ``chaperone-<entry point name>``, as the core's hint for a
        missing channel (``pip install chaperone-teams``) assumes, and the wheel packages
        a folder that exists.
        """
        metadata = project()
        names = list(metadata["project"]["entry-points"]["chaperone"])
        assert names == ["teams"]
        assert metadata["project"]["name"] == f"chaperone-{names[0]}"
        for package in metadata["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
            assert (EXAMPLE / package / "__init__.py").is_file(), package

    @pytest.mark.usefixtures("example_on_path")
    def test_entry_point_loads_and_provides_the_channel(self) -> None:
        """Each entry point of the group ``chaperone`` names a module (or attribute) that
        exists and, registered as a plugin, loads cleanly and provides a channel of its
        name.
        """
        for name, value in project()["project"]["entry-points"]["chaperone"].items():
            entry_point = importlib.metadata.EntryPoint(name=name, value=value, group="chaperone")
            plugin = entry_point.load()
            assert hasattr(plugin, "chaperone_register_channels"), value
            host = PluginHost(entry_points=False, extra=[(name, plugin)])
            [info] = [info for info in host.plugins if info.name == name]
            assert info.status == "ok", info.error
            assert info.channels == [name]
            channel_class = host.channel_classes[name]
            assert issubclass(channel_class, Channel)
            assert channel_class.__module__.split(".")[0] == value.split(":")[0].split(".")[0]
