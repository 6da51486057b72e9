"""The public API: sorted ``__all__``, every name present and documented, light imports."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import pytest

PUBLIC_MODULES = (
    "chaperone",
    "chaperone.config",
    "chaperone.channels",
    "chaperone.store",
    "chaperone.hookspecs",
    "chaperone.breakers",
    "chaperone.supervision",
)


def isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then everything else."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def attribute_docstring(module_name: str, name: str) -> str | None:
    """The string literal right after ``name = ...`` where ``name`` is defined, following
    ``from x import name`` re-exports.
    """
    module = importlib.import_module(module_name)
    body = ast.parse(inspect.getsource(module)).body
    for index, node in enumerate(body):
        if isinstance(node, ast.Assign):
            targets = [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        if name in targets:
            following = body[index + 1] if index + 1 < len(body) else None
            if (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                return following.value.value
            return None
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if alias.name == name and alias.asname in (None, name):
                    return attribute_docstring(node.module, name)
    return None


def docstring_of(module_name: str, name: str) -> str | None:
    """The docstring a reader finds for public ``name``: a class's or function's own, or
    a value's attribute docstring in its source.
    """
    module = importlib.import_module(module_name)
    value = getattr(module, name)
    # The top level imports lazily: a value's docstring stands where it is defined.
    module_name = getattr(module, "_EXPORTS", {}).get(name, module_name)
    if inspect.isclass(value):
        return vars(value).get("__doc__")
    if inspect.isfunction(value) or inspect.isbuiltin(value) or isinstance(value, types.ModuleType):
        return value.__doc__
    return attribute_docstring(module_name, name)


def public_names() -> list[tuple[str, str]]:
    """Every (module, name) pair in the public modules' ``__all__``."""
    return [
        (module_name, name)
        for module_name in PUBLIC_MODULES
        for name in importlib.import_module(module_name).__all__
    ]


class TestAll:
    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_all_is_sorted_and_unique(self, module_name: str) -> None:
        """``__all__`` is sorted (isort style, as ruff keeps it) with no name twice."""
        names = list(importlib.import_module(module_name).__all__)
        assert names == sorted(names, key=isort_key)
        assert len(names) == len(set(names))

    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_every_name_exists(self, module_name: str) -> None:
        """Every name in ``__all__`` is an attribute of the module."""
        module = importlib.import_module(module_name)
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == []

    @pytest.mark.parametrize(
        ("module_name", "name"), public_names(), ids=[".".join(pair) for pair in public_names()]
    )
    def test_every_name_is_documented(self, module_name: str, name: str) -> None:
        """Every public name carries a docstring of its own."""
        doc = docstring_of(module_name, name)
        assert doc is not None
        assert doc.strip()

    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_module_is_documented(self, module_name: str) -> None:
        """Every public module opens with a docstring."""
        doc = importlib.import_module(module_name).__doc__
        assert doc is not None
        assert doc.strip()

    def test_top_level_re_exports_the_same_objects(self) -> None:
        """Names the top level shares with a subpackage are the very same objects."""
        import chaperone

        for module_name in PUBLIC_MODULES[1:]:
            module = importlib.import_module(module_name)
            for name in set(module.__all__) & set(chaperone.__all__):
                assert getattr(chaperone, name) is getattr(module, name), name


class TestImportCost:
    def test_import_pulls_in_no_test_tools(self, tmp_path: Path) -> None:
        """Importing the public modules in a fresh interpreter loads neither hypothesis nor
        pytest.
        """
        env = {key: value for key, value in os.environ.items() if not key.startswith("CHAPERONE_")}
        code = (
            f"import {', '.join(PUBLIC_MODULES)}, sys; "
            "print(sorted(m for m in ('hypothesis', 'pytest', '_pytest') if m in sys.modules))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"


def type_checking_imports() -> dict[str, str]:
    """Each name the top level imports for type checkers, and the module it comes from."""
    import chaperone

    tree = ast.parse(inspect.getsource(chaperone))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    return {
        alias.asname or alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


def top_level_names() -> list[str]:
    """The names ``chaperone`` exports, from its one list."""
    import chaperone

    return list(chaperone._EXPORTS)


def shown(value: object) -> str:
    """A function's dotted name; any other value's ``repr``, and an exception's attributes."""
    if inspect.isfunction(value):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, Exception):
        return f"{value!r} {vars(value)}"
    return repr(value)


def in_fresh_interpreter(code: str, stdin: bytes = b"") -> str:
    """What ``code`` prints in a new interpreter (no ``CHAPERONE_*`` variables)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHAPERONE_")}
    result = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


class TestOneList:
    def test_all_is_the_export_map(self) -> None:
        """``chaperone.__all__`` holds exactly the names of the lazy map, in ruff's order."""
        import chaperone

        assert chaperone.__all__ == sorted(chaperone._EXPORTS, key=isort_key)

    def test_type_checkers_see_the_export_map(self) -> None:
        """The imports type checkers read name the same modules as the lazy map."""
        import chaperone

        assert type_checking_imports() == chaperone._EXPORTS

    def test_dir_lists_every_export(self) -> None:
        """``dir(chaperone)`` lists every exported name."""
        import chaperone

        assert set(chaperone._EXPORTS) <= set(dir(chaperone))

    @pytest.mark.parametrize("name", top_level_names())
    def test_each_name_resolves_to_its_home(self, name: str) -> None:
        """Each exported name is the very object its defining module holds."""
        import chaperone

        home = importlib.import_module(chaperone._EXPORTS[name])
        assert getattr(chaperone, name) is getattr(home, name)


class TestModuleShown:
    def test_classes_and_functions_report_chaperone(self) -> None:
        """Every exported class and function reports ``chaperone`` as its module; the
        rest are pluggy's marker instances.
        """
        import chaperone

        values = {name: getattr(chaperone, name) for name in chaperone.__all__}
        defined = {
            name: value.__module__
            for name, value in values.items()
            if inspect.isclass(value) or inspect.isfunction(value)
        }
        assert set(defined.values()) == {"chaperone"}
        assert sorted(set(values) - set(defined)) == ["hookimpl", "hookspec"]

    def test_reached_first_through_its_home_it_still_reports_chaperone(self) -> None:
        """A class imported from its private module first reports ``chaperone`` once the
        top level has handed out any name of that module.
        """
        code = (
            "from chaperone._alerts import Severity\n"
            "import chaperone\n"
            "chaperone.Alert\n"
            "print(Severity.__module__, repr(chaperone.ConfigError))"
        )
        assert in_fresh_interpreter(code) == "chaperone <class 'chaperone.ConfigError'>"

    def test_import_stays_lazy(self) -> None:
        """``import chaperone`` imports none of its submodules."""
        code = "import chaperone, sys; print(sorted(m for m in sys.modules if 'chaperone' in m))"
        assert in_fresh_interpreter(code) == "['chaperone']"

    def test_pickles_load_in_a_fresh_interpreter(self) -> None:
        """Attrs classes, events, enums, functions and exceptions pickle by reference to
        ``chaperone`` and load, whole, in an interpreter that imported nothing yet.
        """
        from datetime import UTC, datetime, timedelta

        import chaperone

        values = [
            chaperone.ConfigProblem("CHAPERONE_STORE", "environment", "is required"),
            chaperone.JobStuck(supervision_id="s", job_class="c", stuck_duration=timedelta(1)),
            chaperone.Priority.HIGH,
            chaperone.parse_duration,
            chaperone.ConfigError.single("CHAPERONE_STORE", "environment", "is required"),
            chaperone.CircuitOpenError("payments", datetime(2024, 1, 15, tzinfo=UTC)),
            chaperone.StoreError("the store is gone"),
        ]
        pickled = pickle.dumps(values)
        assert b"chaperone._" not in pickled
        code = (
            "import inspect, pickle, sys\n"
            f"{inspect.getsource(shown)}\n"
            "for value in pickle.loads(sys.stdin.buffer.read()):\n"
            "    print(shown(value))"
        )
        printed = in_fresh_interpreter(code, stdin=pickled).splitlines()
        assert printed == [shown(value) for value in values]


REPOSITORY = Path(__file__).resolve().parent.parent
CHANNEL_AUTHOR_MODULES = {"chaperone.channels", "chaperone.channels.text"}
"""What a channel plugin's code imports of the core: one package, with its text helpers."""


def core_imports(source: Path) -> set[str]:
    """The modules of the core (``chaperone`` and below) a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "chaperone" or name.startswith("chaperone.")}


class TestChannelAuthorsImport:
    @pytest.mark.parametrize(
        "plugin", sorted(path.name for path in (REPOSITORY / "plugins").glob("chaperone-*"))
    )
    def test_a_channel_plugin_imports_only_chaperone_channels(self, plugin: str) -> None:
        """Each channel plugin's code imports the core through ``chaperone.channels``."""
        sources = sorted((REPOSITORY / "plugins" / plugin / "src").rglob("*.py"))
        assert sources
        imported = set().union(*(core_imports(source) for source in sources))
        assert "chaperone.channels" in imported
        assert imported <= CHANNEL_AUTHOR_MODULES
