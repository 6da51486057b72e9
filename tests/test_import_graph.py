"""The layers of the core import one way only, read from the source (imports under
``TYPE_CHECKING`` and inside functions included):

    facade (_chaperone) → dispatcher (_dispatch) → delivery → channel registry → _plugins
                          dispatcher → _hooks → _runtime → _plugins
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import chaperone

SOURCE = Path(chaperone.__file__).parent

FACADE = "chaperone._chaperone"
DISPATCHER = "chaperone._dispatch"
DELIVERY = "chaperone._delivery"
REGISTRY = "chaperone.channels._registry"
CONFIG_CHECK = "chaperone.channels._config_check"
HOOKS = "chaperone._hooks"
RUNTIME = "chaperone._runtime"
PLUGINS = "chaperone._plugins"

FORBIDDEN: dict[str, set[str]] = {
    DISPATCHER: {RUNTIME, FACADE},
    DELIVERY: {RUNTIME, FACADE, DISPATCHER, HOOKS},
    REGISTRY: {RUNTIME, FACADE, DISPATCHER, DELIVERY, HOOKS},
    CONFIG_CHECK: {RUNTIME, FACADE, DISPATCHER, DELIVERY, HOOKS},
    HOOKS: {FACADE, DISPATCHER, DELIVERY, REGISTRY},
    RUNTIME: {FACADE, DISPATCHER, DELIVERY, REGISTRY, CONFIG_CHECK, HOOKS},
    PLUGINS: {FACADE, DISPATCHER, DELIVERY, REGISTRY, CONFIG_CHECK, HOOKS, RUNTIME},
}
"""For each layer, the modules it must not import: those above it."""


def imported_by(path: Path) -> set[str]:
    """Every chaperone module a source file imports, anywhere in it (the package of
    ``from chaperone import _delivery`` counted too).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import, which this reader does not follow"
            base = node.module or ""
            found.add(base)
            # ``from chaperone import _delivery`` imports a module, not a name.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "chaperone" or name.startswith("chaperone.")}


def source_of(module: str) -> Path:
    """The file of a module of the package."""
    relative = Path(*module.split(".")[1:])
    file = SOURCE / relative.with_suffix(".py")
    return file if file.exists() else SOURCE / relative / "__init__.py"


OUTER_LAYERS = ("chaperone.cli", "chaperone.web")
"""The command line and the web app: front ends, which the rest of the package never
imports (the web app may use the command line's neighbours, not the command line)."""


def modules_under(package: str) -> list[Path]:
    """Every source file of the package but those of ``package``."""
    inside = SOURCE / Path(*package.split(".")[1:])
    return sorted(path for path in SOURCE.rglob("*.py") if inside not in path.parents)


class TestLayers:
    @pytest.mark.parametrize("front", OUTER_LAYERS)
    def test_no_module_below_imports_a_front_end(self, front: str) -> None:
        """Outside the command line and the web app, nothing imports them; the web app
        does not import the command line either."""
        offenders = [
            str(path.relative_to(SOURCE))
            for path in modules_under(front)
            if any(name == front or name.startswith(f"{front}.") for name in imported_by(path))
            and not (front == "chaperone.web" and "cli" in path.relative_to(SOURCE).parts)
        ]
        assert offenders == []

    @pytest.mark.parametrize("module", sorted(FORBIDDEN))
    def test_no_layer_imports_one_above_it(self, module: str) -> None:
        """A layer imports nothing above it, not even for typing."""
        imports = imported_by(source_of(module))
        assert imports & FORBIDDEN[module] == set()

    def test_the_reader_sees_type_checking_and_local_imports(self, tmp_path: Path) -> None:
        """The graph's reader finds imports under TYPE_CHECKING and inside functions."""
        sample = tmp_path / "sample.py"
        sample.write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from chaperone._runtime import Runtime\n"
            "def later():\n"
            "    from chaperone import _chaperone\n",
            encoding="utf-8",
        )
        assert {RUNTIME, FACADE} <= imported_by(sample)
