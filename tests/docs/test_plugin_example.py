"""The docs' example channel plugin (the files ``docs/channel-plugins.md`` shows) works as
published: its own tests pass, run the way its author runs them, and the entry point its
``pyproject.toml`` declares loads and provides the channel.

The page holds the only copy of the example's code: each of its blocks titled
``pyproject.toml``, ``src/...`` or ``tests/...`` is written to a folder, and the tests run
there. The example is never installed into this environment (other tests list the
installed plugins): its tests find it on ``PYTHONPATH``, beside a distribution record
that makes it look installed to them, so the tests that need an installed plugin (its
entry point, the ``chaperone`` command) run too.
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
from helpers.doc_examples import DOCS, ROOT, blocks

PAGE = DOCS / "channel-plugins.md"
EXAMPLE_FILES = ("pyproject.toml", "src/", "tests/")
"""The titles of the page's blocks that make up the example plugin."""


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, written from the page's blocks into a folder of its own."""
    folder = tmp_path_factory.mktemp("chaperone-teams")
    for block in blocks(PAGE.read_text(encoding="utf-8")):
        if block.title and block.title.startswith(EXAMPLE_FILES):
            target = folder / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
    return folder


def project(example: Path) -> dict[str, Any]:
    """The example's ``pyproject.toml``."""
    return tomllib.loads((example / "pyproject.toml").read_text(encoding="utf-8"))


def installed_record(example: Path) -> Path:
    """A folder holding the example's distribution record (name, version, entry points),
    as installing it would write: on the path, it makes the source there look installed.
    """
    metadata = project(example)["project"]
    folder = example / "installed"
    record = folder / f"{metadata['name'].replace('-', '_')}-{metadata['version']}.dist-info"
    record.mkdir(parents=True, exist_ok=True)
    (record / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {metadata['name']}\nVersion: {metadata['version']}\n",
        encoding="utf-8",
    )
    entry_points = metadata["entry-points"]["chaperone"]
    (record / "entry_points.txt").write_text(
        "[chaperone]\n" + "".join(f"{name} = {value}\n" for name, value in entry_points.items()),
        encoding="utf-8",
    )
    return folder


def example_environ(example: Path) -> dict[str, str]:
    """This environment without ``CHAPERONE_*``, the example's source (looking installed)
    on the path, and hypothesis's storage shared with the rest of the suite (in a fresh
    folder, it spends seconds rebuilding its Unicode tables).
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAPERONE_")}
    environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(ROOT / ".hypothesis"))
    path = [str(example / "src"), str(installed_record(example)), environ.get("PYTHONPATH", "")]
    environ["PYTHONPATH"] = os.pathsep.join(part for part in path if part)
    return environ


@pytest.fixture
def example_on_path(example: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example's source importable in this process, and forgotten afterwards."""
    monkeypatch.syspath_prepend(str(example / "src"))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "chaperone_teams"]:
        del sys.modules[name]


class TestExampleTests:
    """The example's own test suite, run as its author runs it."""

    def test_its_doctests_and_tests_pass(self, example: Path) -> None:
        """``pytest --doctest-modules src tests`` in the example passes, with its contract
        suite, doctests, property tests, loopback test and CLI run among what ran.
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
                "src",
                "tests",
                "-rA",
            ],
            cwd=example,
            env=example_environ(example),
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
        assert "skipped" not in result.stdout.splitlines()[-1], output[-4000:]
        passed_ids = [
            line.removeprefix("PASSED ")
            for line in result.stdout.splitlines()
            if line.startswith("PASSED ")
        ]
        for expected in (
            "chaperone_teams/_channel.py::chaperone_teams._channel.classify",
            "test_teams.py::TestTeamsContract::test_any_alert_is_delivered_to_a_healthy_service",
            "test_teams.py::TestTeamsContract::test_a_full_digest_reaches_the_service_whole",
            "test_teams.py::TestTeamsContract::test_registered_through_entry_point",
            "test_teams.py::TestAgainstARealServer::test_alert_is_posted_as_a_card_after_a_429",
            "test_render.py::test_any_alert_fits",
            "test_render.py::test_a_digest_lists_each_alert_once",
            "test_cli.py::test_every_sample_is_delivered_and_recorded",
        ):
            assert any(test_id.endswith(expected) for test_id in passed_ids), (
                f"{expected!r} did not pass\n{output[-4000:]}"
            )


class TestEntryPoint:
    """What the example's ``pyproject.toml`` declares is there and loads."""

    def test_distribution_follows_the_naming_rule(self, example: Path) -> None:
        """The distribution is ``chaperone-<entry point name>``, as the core's hint for a
        missing channel (``pip install chaperone-teams``) assumes, and the wheel packages
        a folder that exists.
        """
        metadata = project(example)
        names = list(metadata["project"]["entry-points"]["chaperone"])
        assert names == ["teams"]
        assert metadata["project"]["name"] == f"chaperone-{names[0]}"
        for package in metadata["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
            assert (example / package / "__init__.py").is_file(), package

    @pytest.mark.usefixtures("example_on_path")
    def test_entry_point_loads_and_provides_the_channel(self, example: Path) -> None:
        """Each entry point of the group ``chaperone`` names a module (or attribute) that
        exists and, registered as a plugin, loads cleanly and provides a channel of its
        name.
        """
        for name, value in project(example)["project"]["entry-points"]["chaperone"].items():
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
