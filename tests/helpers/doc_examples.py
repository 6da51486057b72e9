"""Run the code examples of a documentation page the way a reader pastes them.

A page's fenced blocks are taken in order, in one fresh folder per page (its own SQLite
store), so a file one block writes is there for the commands after it:

- ``toml``, ``ini``, ``dotenv`` (or ``bash``) blocks with ``title="<file>"`` are written
  to that file (``chaperone.toml``, ``.env``, ``pyproject.toml``...); a TOML file the
  configuration reads is then loaded, and must load. An untitled ``toml`` block is loaded
  on its own as a ``chaperone.toml``.
- ``python`` blocks with ``title="<name>.py"`` are written to that file; a later command
  of the page must run it (``python <name>.py``, ``chaperone run -- python <name>.py``).
  A command naming a folder runs the files in it (``python -m pytest src tests``).
  Untitled ``python`` blocks run as a script (``python -c``) and must exit 0.
- ``bash`` blocks are commands, one a line: ``chaperone …`` and ``python …`` run and must
  exit 0, or the code a trailing ``# exits N`` names; a trailing ``# keeps running`` marks
  a server: it must still be running after a moment, then stops on SIGTERM. ``export
  NAME=value`` sets a variable for the rest of the page. ``pip install …`` is checked,
  not run: each package it names must be one this repository builds, or a published
  package the docs are allowed to name (:data:`KNOWN_PACKAGES`).
- ``text``, ``json`` and ``console`` blocks are output a reader sees, not code: left alone.

Any other language fails the page, so an example can't slip out of the tests by its
fence. ``--8<-- "path"`` lines (pymdownx.snippets) are replaced by the file they name.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path

import attrs

from chaperone.config import load_settings

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
CHAPERONE = Path(sys.executable).parent / "chaperone"

RUNNABLE = frozenset({"python", "toml", "bash", "ini", "dotenv"})
OUTPUT = frozenset({"text", "json", "console"})
KNOWN_PACKAGES = frozenset({"redis", "apprise", "pybreaker", "mkdocs-material", "nox"})
"""Packages the docs may name in ``pip install`` besides this repository's own."""

SERVER_GRACE_S = 1.0
COMMAND_TIMEOUT_S = 60

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.S | re.M
)
_SNIPPET = re.compile(r'^[ ]*--8<--[ ]+"(?P<path>[^"]+)"[ ]*$', re.M)
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')
_EXIT = re.compile(r"#\s*exits\s+(?P<code>\d+)\s*$")


@attrs.frozen
class Block:
    """One fenced block of a page: its language, ``title``, text, and first line."""

    language: str
    title: str | None
    text: str
    line: int

    @property
    def runnable(self) -> bool:
        """Whether the tests run (or load) this block."""
        return self.language in RUNNABLE

    def where(self, page: Path) -> str:
        """``docs/page.md:LINE (language)``, for failure messages."""
        return f"{shown(page)}:{self.line} ({self.language})"


def shown(page: Path) -> str:
    """A page's path as failure messages show it: from the repository root if inside."""
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def expand_snippets(text: str) -> str:
    """Replace each ``--8<-- "path"`` line with the file (relative to the repository)."""
    return _SNIPPET.sub(
        lambda match: (ROOT / match.group("path")).read_text(encoding="utf-8").rstrip("\n"),
        text,
    )


def blocks(markdown: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order, snippets expanded."""
    found = []
    for match in _FENCE.finditer(markdown):
        info = match.group("info").strip()
        language = info.split(maxsplit=1)[0] if info else ""
        title = _TITLE.search(info)
        indent = len(match.group("indent"))
        body = "\n".join(line[indent:] for line in match.group("body").splitlines())
        found.append(
            Block(
                language=language,
                title=title.group("title") if title else None,
                text=expand_snippets(body + "\n"),
                line=markdown.count("\n", 0, match.start()) + 1,
            )
        )
    return found


def runs(command: str, name: str) -> bool:
    """Whether ``command`` runs the file ``name``: names it, or a folder holding it (as in
    ``python -m pytest src tests``).
    """
    folders = [token.rstrip("/") + "/" for token in shlex.split(command)]
    return name in command or any(name.startswith(folder) for folder in folders)


def pages() -> list[Path]:
    """Every Markdown page of the docs site."""
    return sorted(DOCS.rglob("*.md"))


def known_packages() -> frozenset[str]:
    """What ``pip install`` lines may name: this repository's packages (and extras)."""
    own = {"chaperone-core"} | {path.name for path in (ROOT / "plugins").glob("chaperone-*")}
    own |= {path.name for path in (DOCS / "examples").glob("chaperone-*")}
    return frozenset(own) | KNOWN_PACKAGES


def clean_environ(folder: Path) -> dict[str, str]:
    """The caller's environment without ``CHAPERONE_*``, with a store in ``folder``, and
    the tests' interpreter first on PATH."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAPERONE_")}
    # `python` and `chaperone` in a job a page starts are those of the tests' environment.
    environ["PATH"] = os.pathsep.join([str(CHAPERONE.parent), environ.get("PATH", "")])
    environ["CHAPERONE_STORE"] = f"sqlite:///{folder / 'chaperone.sqlite3'}"
    # Hypothesis keeps its example database and Unicode tables here, not in each folder.
    environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(ROOT / ".hypothesis")
    environ["CHAPERONE_LOG_FORMAT"] = "json"
    return environ


class PageRun:
    """Runs one page's blocks in order in ``folder``; fails with the block's place."""

    def __init__(
        self, page: Path, folder: Path, substitutions: Mapping[str, str] | None = None
    ) -> None:
        self.page = page
        self.folder = folder
        self.environ = clean_environ(folder)
        self.substitutions = dict(substitutions or {})
        self.written: dict[str, Block] = {}
        self.commands: list[str] = []
        self.ran = 0

    def run(self) -> int:
        """Run every block; return how many were run or loaded."""
        for block in blocks(self.page.read_text(encoding="utf-8")):
            self.run_block(block)
        for name, block in self.written.items():
            if name.endswith(".py") and not any(runs(command, name) for command in self.commands):
                raise AssertionError(f"{block.where(self.page)}: no command runs {name}")
        return self.ran

    def _text(self, block: Block) -> str:
        text = block.text
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def run_block(self, block: Block) -> None:
        """Run (or write and load) one block."""
        if block.language in OUTPUT:
            return
        if block.language not in RUNNABLE:
            raise AssertionError(
                f"{block.where(self.page)}: fence language {block.language!r} is neither "
                f"code the tests run ({sorted(RUNNABLE)}) nor output ({sorted(OUTPUT)})"
            )
        self.ran += 1
        text = self._text(block)
        if block.title is not None:
            self._write(block, text)
        elif block.language == "python":
            self._python(block, text)
        elif block.language == "toml":
            self._load_alone(block, text)
        elif block.language == "bash":
            for number, line in enumerate(text.splitlines()):
                self._command(block, line, block.line + 1 + number)
        else:
            raise AssertionError(
                f"{block.where(self.page)}: a {block.language} block needs a title"
            )

    def _write(self, block: Block, text: str) -> None:
        assert block.title is not None
        target = self.folder / block.title
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        self.written[block.title] = block
        if block.title.endswith(".toml"):
            self._load(block, self.folder)
        elif block.title.endswith(".py"):
            compile(text, block.title, "exec")

    def _load(self, block: Block, folder: Path) -> None:
        environ = {k: v for k, v in self.environ.items() if k.startswith("CHAPERONE_")}
        try:
            load_settings(environ=environ, cwd=folder)
        except Exception as error:
            raise AssertionError(f"{block.where(self.page)}: does not load: {error}") from error

    def _load_alone(self, block: Block, text: str) -> None:
        tomllib.loads(text)
        alone = self.folder / f".alone-{block.line}"
        alone.mkdir()
        (alone / "chaperone.toml").write_text(text, encoding="utf-8")
        self._load(block, alone)

    def _python(self, block: Block, text: str) -> None:
        result = subprocess.run(
            [sys.executable, "-c", text],
            cwd=self.folder,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{block.where(self.page)}: exited {result.returncode}\n{result.stderr[-3000:]}"
            )

    def _command(self, block: Block, line: str, number: int) -> None:
        command = line.strip()
        if not command or command.startswith("#"):
            return
        place = f"{shown(self.page)}:{number}"
        expected = _EXIT.search(command)
        server = command.endswith("# keeps running")
        words = shlex.split(command, comments=True)
        if not words:
            return
        program, *arguments = words
        if program == "export":
            for assignment in arguments:
                name, _, value = assignment.partition("=")
                self.environ[name] = value
            return
        if program in {"pip", "pip3"}:
            self._check_install(place, arguments)
            return
        if program == "chaperone":
            argv = [str(CHAPERONE), *arguments]
        elif program in {"python", "python3"}:
            argv = [sys.executable, *arguments]
        else:
            raise AssertionError(f"{place}: the tests don't run {program!r}: use a text block")
        self.commands.append(command)
        if server:
            self._server(place, argv)
            return
        result = subprocess.run(
            argv,
            cwd=self.folder,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        want = int(expected.group("code")) if expected else 0
        if result.returncode != want:
            raise AssertionError(
                f"{place}: `{command}` exited {result.returncode}, not {want}\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )

    def _server(self, place: str, argv: list[str]) -> None:
        process = subprocess.Popen(
            argv,
            cwd=self.folder,
            env=self.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(SERVER_GRACE_S)  # a server's start, not a window under test
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"{place}: the server exited {process.returncode}\n{err[-3000:]}")
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise AssertionError(f"{place}: the server did not stop on SIGTERM") from None
        if process.returncode not in {0, -signal.SIGTERM}:
            raise AssertionError(f"{place}: the server stopped with {process.returncode}")

    def _check_install(self, place: str, arguments: list[str]) -> None:
        known = known_packages()
        if arguments[:1] != ["install"]:
            raise AssertionError(f"{place}: pip does only `pip install` on these pages")
        for argument in arguments[1:]:
            if argument.startswith("-"):
                continue
            name = re.split(r"[\[<>=!~ ]", argument, maxsplit=1)[0]
            if name not in known and not name.startswith((".", "/")):
                raise AssertionError(f"{place}: pip install names unknown package {name!r}")
