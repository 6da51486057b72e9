"""Maintenance windows: ad-hoc ones opened from the command line, recurring ones from the
config file, what each suppressed, and the summary delivered when each ends.

The filter and detector that use them are the built-in plugin
:mod:`chaperone.builtin.maintenance_windows`; ``chaperone maintenance`` is the command line.
"""

from __future__ import annotations

from chaperone.maintenance._ending import (
    Ending,
    claim_summary,
    due_summaries,
    end_windows,
    find_window,
)
from chaperone.maintenance._recurring import (
    Occurrence,
    current_occurrence,
    local_instant,
    next_occurrence,
    occurrences,
)
from chaperone.maintenance._status import describe_window, status
from chaperone.maintenance._windows import (
    ADHOC,
    ENDS_INDEX,
    KEEP,
    MAX_EXAMPLES,
    RECURRING,
    RESOLVE_MEMORY,
    Suppressed,
    UnknownWindowError,
    Window,
    active_windows,
    forget_resolve,
    load_windows,
    record_suppression,
    start_window,
    suppressed,
    take_resolve,
    window_for,
)

__all__ = [
    "ADHOC",
    "ENDS_INDEX",
    "KEEP",
    "MAX_EXAMPLES",
    "RECURRING",
    "RESOLVE_MEMORY",
    "Ending",
    "Occurrence",
    "Suppressed",
    "UnknownWindowError",
    "Window",
    "active_windows",
    "claim_summary",
    "current_occurrence",
    "describe_window",
    "due_summaries",
    "end_windows",
    "find_window",
    "forget_resolve",
    "load_windows",
    "local_instant",
    "next_occurrence",
    "occurrences",
    "record_suppression",
    "start_window",
    "status",
    "suppressed",
    "take_resolve",
    "window_for",
]
