"""The public API: sorted ``__all__``, every name present and documented, light imports."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
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
