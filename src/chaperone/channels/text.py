"""Fit text into a service's limits: cut with an ellipsis, never rejected for size."""

from __future__ import annotations

from typing import Final

__all__ = ["ELLIPSIS", "truncate"]

ELLIPSIS: Final = "…"


def truncate(text: str, limit: int, *, ellipsis: str = ELLIPSIS) -> str:
    """Return ``text`` if it fits in ``limit`` characters, else its start and an ellipsis,
    ``limit`` characters in all.
    """
    if limit < len(ellipsis):
        raise ValueError(f"limit {limit} is shorter than the ellipsis")
    if len(text) <= limit:
        return text
    return text[: limit - len(ellipsis)] + ellipsis
