"""Figures a test reports (alerts sent and received, delays measured), printed together at
the end of the run by tests/conftest.py, whatever pytest captures."""

from __future__ import annotations

__all__ = ["LINES", "report"]

LINES: list[str] = []
"""What the tests reported, in order."""


def report(line: str) -> None:
    """Keep ``line`` for the end-of-run summary."""
    LINES.append(line.strip("\n"))
