"""Read the configuration's files: the TOML file and ``.env``.

A file that cannot be read, or does not parse, is a :class:`ConfigProblem`, never an
exception. A line that is not UTF-8 is a problem naming the setting on it (its dotted
TOML key, or its variable) and the file; the line is left out and the rest of the file
is read, so every other problem is still found.
"""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from chaperone._exceptions import ConfigProblem

__all__ = ["dotenv_source", "read_dotenv", "read_toml"]

_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")
_DOTENV_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")

KeyOfLine = Callable[[list[str], str], str | None]
"""Names the setting a line sets, given the lines before it (None: it sets none)."""


def dotenv_source(path: Path) -> str:
    """How a value read from the ``.env`` file at ``path`` names where it came from."""
    return f".env file {path}"


def _undecodable(lines: list[bytes]) -> Iterator[tuple[int, int]]:
    """(index, first bad byte) of each line that is not UTF-8."""
    for index, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield index, line[exc.start]


def _decoded(
    data: bytes, path: Path, source: str, name_of: KeyOfLine, problems: list[ConfigProblem]
) -> str:
    """``data`` as text; each line that is not UTF-8 is left out (emptied) and reported
    under the name ``name_of(lines_before, line)`` gives it, or the file's name.
    """
    lines = data.split(b"\n")
    bad = dict(_undecodable(lines))
    if not bad:
        return data.decode("utf-8")
    texts = [line.decode("utf-8", "replace") for line in lines]
    for index, byte in bad.items():
        key = name_of(texts[:index], texts[index]) or path.name
        message = (
            f"is not UTF-8 text (byte 0x{byte:02x} on line {index + 1}); save the file as UTF-8"
        )
        problems.append(ConfigProblem(key=key, source=source, message=message))
        texts[index] = ""
    return "\n".join(texts)


def _toml_key(before: list[str], line: str) -> str | None:
    """The dotted key a TOML line sets (``channels.mail.from_name``,
    ``alerting.routes[1].name``), as far as the lines before it tell.
    """
    match = _TOML_KEY.match(line)
    if match is None:
        return None
    table: list[str] = []
    arrays: dict[str, int] = {}
    for text in before:
        header = _TOML_HEADER.match(text)
        if header is None:
            continue
        name = _dotted(header.group(2))
        if header.group(1) == "[[":
            arrays[name] = arrays.get(name, -1) + 1
            table = [f"{name}[{arrays[name]}]"]
        else:
            table = [name]
    return ".".join([*table, _dotted(match.group(1))])


def _dotted(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


def _dotenv_key(_before: list[str], line: str) -> str | None:
    match = _DOTENV_KEY.match(line)
    return match.group(1) if match else None


def read_toml(path: Path, problems: list[ConfigProblem]) -> dict[str, Any]:
    """The table of the TOML file at ``path``; empty, with the problem added, when it
    cannot be read or parsed.
    """
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(
            ConfigProblem(key=path.name, source=source, message=f"cannot be read ({exc.strerror})")
        )
        return {}
    before = len(problems)
    text = _decoded(data, path, source, _toml_key, problems)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if len(problems) == before:  # else the lines left out may be what broke it
            problems.append(ConfigProblem(key=path.name, source=source, message=str(exc)))
        return {}


def read_dotenv(path: Path, problems: list[ConfigProblem]) -> dict[str, str]:
    """The variables of the ``.env`` file at ``path``; what can be read of it, with the
    problems added, when some of it cannot.
    """
    source = dotenv_source(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(
            ConfigProblem(key=".env", source=source, message=f"cannot be read ({exc.strerror})")
        )
        return {}
    text = _decoded(data, path, source, _dotenv_key, problems)
    values = dotenv_values(stream=io.StringIO(text))
    return {name: value or "" for name, value in values.items()}
