"""One home for the built-in plugins: the folder ``chaperone/builtin`` holds every one of
them and nothing else, each under its dotted name, and none imports the monitor.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import chaperone
from chaperone import PluginHost
from chaperone._plugins import builtin_modules

SOURCE = Path(chaperone.__file__).resolve().parent
"""The ``chaperone`` package's folder."""
FOLDER = SOURCE / "builtin"
"""The built-in plugins' folder."""
HOOK_MARK = "chaperone_impl"
"""The attribute ``chaperone.hookimpl`` sets on a function it marks."""
BUILTIN_NAMES = [module.__name__ for module in builtin_modules()]
"""Every built-in plugin, lowest ORDER first."""


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at any depth (under ``TYPE_CHECKING`` too):
    ``import a.b`` gives ``a.b``; ``from a import b`` gives ``a`` and ``a.b``.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def hook_names(module_name: str) -> list[str]:
    """The names of the hook implementations a module defines."""
    module = importlib.import_module(module_name)
    return [name for name, value in vars(module).items() if hasattr(value, HOOK_MARK)]


class TestTheFolder:
    def test_every_module_of_the_folder_is_a_builtin(self) -> None:
        """The built-ins are exactly the folder's modules, each registered under its
        dotted module name.
        """
        files = {path.stem for path in FOLDER.glob("*.py")} - {"__init__"}
        assert sorted(BUILTIN_NAMES) == sorted(f"chaperone.builtin.{stem}" for stem in files)
        host = PluginHost(entry_points=False)
        registered = [info.name for info in host.plugins if info.builtin]
        assert registered == BUILTIN_NAMES
        assert all(host.manager.get_plugin(name) is not None for name in registered)

    @pytest.mark.parametrize("name", BUILTIN_NAMES)
    def test_each_module_implements_a_hook(self, name: str) -> None:
        """Nothing sits in the folder that is not a plugin."""
        assert hook_names(name), f"{name} implements no hook"

    @pytest.mark.parametrize("name", BUILTIN_NAMES)
    def test_each_module_declares_its_order(self, name: str) -> None:
        """Each built-in declares ``ORDER``, an int, documented in its source."""
        module = importlib.import_module(name)
        assert isinstance(module.ORDER, int)
        assert "ORDER: Final = " in Path(str(module.__file__)).read_text(encoding="utf-8")

    def test_the_old_plugin_packages_are_gone(self) -> None:
        """``chaperone.detectors`` and ``chaperone.filters`` no longer exist."""
        for name in ("chaperone.detectors", "chaperone.filters"):
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module(name)

    def test_no_plugin_outside_the_folder(self) -> None:
        """No module of ``chaperone`` outside the folder implements a hook (channels/
        keeps what channel authors import, not plugins).
        """
        outside = [
            found.name
            for found in pkgutil.walk_packages([str(SOURCE)], prefix="chaperone.")
            if not found.name.startswith("chaperone.builtin.") and hook_names(found.name)
        ]
        assert outside == []


class TestImports:
    @pytest.mark.parametrize("name", BUILTIN_NAMES)
    def test_no_builtin_imports_the_monitor(self, name: str) -> None:
        """No built-in imports ``chaperone._monitor``, not even for typing: what it
        needs of the monitor lives below both.
        """
        path = FOLDER / f"{name.rsplit('.', 1)[-1]}.py"
        assert "chaperone._monitor" not in imported_modules(path)
