"""Discord's documented limits on a webhook message, and a check of a payload against
them.

Lengths are counted in UTF-16 code units, which is never less than the number of code
points: a text within a limit counted that way is within it however Discord counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from chaperone.channels.text import utf16_length

__all__ = [
    "AUTHOR",
    "CONTENT",
    "DESCRIPTION",
    "EMBEDS",
    "FIELDS",
    "FIELD_NAME",
    "FIELD_VALUE",
    "FOOTER",
    "TITLE",
    "TOTAL",
    "USERNAME",
    "limit_problems",
]

CONTENT: Final = 2000
"""Characters of a message's ``content``."""
EMBEDS: Final = 10
"""Embeds in one message."""
TITLE: Final = 256
DESCRIPTION: Final = 4096
FIELDS: Final = 25
"""Fields in one embed."""
FIELD_NAME: Final = 256
FIELD_VALUE: Final = 1024
FOOTER: Final = 2048
AUTHOR: Final = 256
TOTAL: Final = 6000
"""Characters across every embed's title, description, field names and values, footer
text and author name, together.
"""
USERNAME: Final = 80
"""Characters of the ``username`` a webhook message is posted under."""


def _text(value: Any, where: str, limit: int, problems: list[str]) -> int:
    """Check one text of an embed; return its length for the total."""
    if not isinstance(value, str):
        problems.append(f"{where} is {type(value).__name__}, not text")
        return 0
    size = utf16_length(value)
    if size > limit:
        problems.append(f"{where} is {size} long, over {limit}")
    return size


def _filled(text: Any) -> bool:
    """Whether ``text`` is text with something other than whitespace in it."""
    return isinstance(text, str) and bool(text.strip())


def _embed_problems(embed: Any, where: str, problems: list[str]) -> int:
    """Check one embed; return the characters it counts toward the total."""
    if not isinstance(embed, Mapping):
        problems.append(f"{where} is not an object")
        return 0
    total = 0
    if "title" in embed:
        total += _text(embed["title"], f"{where}.title", TITLE, problems)
    if "description" in embed:
        total += _text(embed["description"], f"{where}.description", DESCRIPTION, problems)
    fields = embed.get("fields", [])
    if len(fields) > FIELDS:
        problems.append(f"{where} has {len(fields)} fields, over {FIELDS}")
    for number, field in enumerate(fields):
        name, value = field.get("name"), field.get("value")
        total += _text(name, f"{where}.fields[{number}].name", FIELD_NAME, problems)
        total += _text(value, f"{where}.fields[{number}].value", FIELD_VALUE, problems)
        if not _filled(name) or not _filled(value):
            problems.append(f"{where}.fields[{number}] has a blank name or value")
        if not isinstance(field.get("inline", False), bool):
            problems.append(f"{where}.fields[{number}].inline is not a boolean")
    if "footer" in embed:
        total += _text(embed["footer"].get("text"), f"{where}.footer.text", FOOTER, problems)
    if "author" in embed:
        total += _text(embed["author"].get("name"), f"{where}.author.name", AUTHOR, problems)
    color = embed.get("color", 0)
    if not isinstance(color, int) or not 0 <= color <= 0xFFFFFF:
        problems.append(f"{where}.color is not a 24-bit integer")
    if not any(key in embed for key in ("title", "description", "fields", "footer", "author")):
        problems.append(f"{where} is empty")
    return total


def limit_problems(payload: Mapping[str, Any]) -> list[str]:
    """Every way ``payload`` breaks a documented limit of Discord's webhook API; empty
    when Discord would accept its size.
    """
    problems: list[str] = []
    if "content" in payload:
        _text(payload["content"], "content", CONTENT, problems)
    if "username" in payload:
        _text(payload["username"], "username", USERNAME, problems)
    embeds = payload.get("embeds", [])
    if not embeds and not payload.get("content"):
        problems.append("the message has neither content nor embeds")
    if len(embeds) > EMBEDS:
        problems.append(f"{len(embeds)} embeds, over {EMBEDS}")
    total = sum(
        _embed_problems(embed, f"embeds[{number}]", problems) for number, embed in enumerate(embeds)
    )
    if total > TOTAL:
        problems.append(f"the embeds hold {total} characters, over {TOTAL}")
    return problems
