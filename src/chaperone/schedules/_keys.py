"""Where schedule facts live in the store: one place, so the monitor, the command line,
the web pages and the job processes agree on every key.

- ``schedules:declared:<job>``: a schedule declared by ``chaperone run --schedule`` or
  code, with who declared it and when, refreshed by each run;
- ``schedules:paused:<job>``: the schedule is paused (since when);
- ``schedules:resumed:<job>``: when it was last resumed: no run is expected before;
- ``schedules:seen:<job>``: when the schedule was first seen, the anchor of its first
  expected run while the job never ran;
- ``schedules:configured``: a digest of the configuration's schedules, as last indexed;
- ``missed:<job>``: the job's open missed-run incident (its claim);
- the deadline index ``schedule-deadlines``: one member per watched job, its name.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONFIGURED_DIGEST",
    "DEADLINES",
    "DECLARED_PREFIX",
    "MISSED_PREFIX",
    "declared_key",
    "missed_key",
    "paused_key",
    "resumed_key",
    "seen_key",
]

DEADLINES: Final = "schedule-deadlines"
"""The deadline index of schedules: members are job names, due when a run may be missed."""
DECLARED_PREFIX: Final = "schedules:declared:"
MISSED_PREFIX: Final = "missed:"
CONFIGURED_DIGEST: Final = "schedules:configured"


def declared_key(job: str) -> str:
    """The key of ``job``'s declared schedule."""
    return f"{DECLARED_PREFIX}{job}"


def paused_key(job: str) -> str:
    """The key that marks ``job``'s schedule paused."""
    return f"schedules:paused:{job}"


def resumed_key(job: str) -> str:
    """The key that says when ``job``'s schedule was last resumed."""
    return f"schedules:resumed:{job}"


def seen_key(job: str) -> str:
    """The key that says when a schedule of ``job`` was first seen."""
    return f"schedules:seen:{job}"


def missed_key(job: str) -> str:
    """The key that marks ``job``'s open missed-run incident (set-if-absent claims it)."""
    return f"{MISSED_PREFIX}{job}"
