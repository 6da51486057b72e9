"""The alert history, a fixed number of deliveries a page, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs

from chaperone.builtin.database_channel import read_history
from chaperone.store import Store
from chaperone.web.pages._alerts import AlertRow, group_alerts

__all__ = ["PAGE_SIZE", "HistoryPage", "history_page", "page_number"]

PAGE_SIZE: Final = 50
"""History records (deliveries) a page shows."""
MAX_PAGE: Final = 10_000
"""The highest page number read (a bigger ``?page=`` is this one)."""


@attrs.frozen
class HistoryPage:
    """One page of the history."""

    page: int
    alerts: tuple[AlertRow, ...]
    has_next: bool

    @property
    def has_previous(self) -> bool:
        """Whether a newer page exists."""
        return self.page > 1


def page_number(text: str | None) -> int:
    """A ``?page=`` value as a page number: 1 for anything that is not a whole number from
    1, at most :data:`MAX_PAGE`.
    """
    if text is None or not text.isascii() or not text.isdigit():
        return 1
    return max(1, min(MAX_PAGE, int(text)))


def history_page(store: Store, page: int, now: datetime) -> HistoryPage:
    """Page ``page`` (from 1) of the history: :data:`PAGE_SIZE` records, grouped into
    alerts with their deliveries.
    """
    start = (page - 1) * PAGE_SIZE
    records = read_history(store, start + PAGE_SIZE + 1)
    return HistoryPage(
        page=page,
        alerts=tuple(group_alerts(records[start : start + PAGE_SIZE], now)),
        has_next=len(records) > start + PAGE_SIZE,
    )
