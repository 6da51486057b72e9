"""The docs' example plugin that is not a channel (``docs/examples/chaperone-deploys``)
declares what it uses: the entry points its ``pyproject.toml`` names load from the source
folder and give the events, settings, commands and store the page describes. (The
example's own tests run with the page: ``tests/docs/test_docs.py``.)

The example is never installed into this environment: it is imported from its source
folder and forgotten afterwards.
"""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from chaperone import ManualClock, PluginHost
from chaperone.cli import COMMANDS
from helpers.doc_examples import DOCS

EXAMPLE = DOCS / "examples" / "chaperone-deploys"
SOURCE = EXAMPLE / "src"


def project() -> dict[str, Any]:
    """The example's ``pyproject.toml``."""
    return tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))


def entry_point(group: str, name: str) -> importlib.metadata.EntryPoint:
    """The entry point the example declares in ``group`` under ``name``."""
    value = project()["project"]["entry-points"][group][name]
    return importlib.metadata.EntryPoint(name=name, value=value, group=group)


@pytest.fixture
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example's source importable (no bytecode written into the docs folder)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(SOURCE))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "chaperone_deploys"]:
        del sys.modules[name]


@pytest.mark.usefixtures("example_on_path")
class TestEntryPoints:
    def test_the_plugin_registers_its_events_settings_and_commands(self) -> None:
        """Loaded as the group ``chaperone`` would load it, the plugin works, registers
        both events and its settings class, and adds the ``deploys`` command."""
        plugin = entry_point("chaperone", "deploys").load()
        host = PluginHost(entry_points=False, extra=[("deploys", plugin)])
        [info] = [info for info in host.plugins if info.name == "deploys"]
        assert info.status == "ok", info.error
        assert {"DeploymentSlow", "DeploymentFailed"} <= set(host.event_classes)
        assert host.event_classes.owner_of("DeploymentFailed") == "deploys"
        assert host.settings_classes["deploys"] is plugin.DeploySettings
        assert list(host.commands(COMMANDS)) == ["deploys"]

    def test_the_store_entry_point_opens_its_scheme(self) -> None:
        """The ``chaperone.stores`` entry point named ``scratch`` opens a working store."""
        opener = entry_point("chaperone.stores", "scratch").load()
        store = opener("scratch://docs-entry-point", ManualClock(), key="K", source="S")
        try:
            store.set("k", "v")
            assert store.get("k") == "v"
        finally:
            store.delete("k")
            store.close()
