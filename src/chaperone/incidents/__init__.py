"""Open incidents and what people do about them.

Every firing alert that enters the pipeline (test alerts aside) opens or counts in its
incident, by type and key, before any filter can suppress it; a resolved alert closes
it (:mod:`chaperone.builtin.open_incidents` keeps them). A person may acknowledge an
open incident, which stops its repeats and is passed on to PagerDuty and Opsgenie where
they carried it, undo that, or silence it with a maintenance window of its own.
"""

from __future__ import annotations

from chaperone.incidents._actions import (
    PASS_ON_WAIT,
    ActionResult,
    UnknownIncidentError,
    acknowledge,
    acknowledge_incident,
    escape_glob,
    passed_on_to,
    silence,
    unacknowledge,
    unacknowledge_incident,
)
from chaperone.incidents._records import (
    PREFIX,
    Acknowledgement,
    Incident,
    find_incident,
    open_incidents,
)

__all__ = [
    "PASS_ON_WAIT",
    "PREFIX",
    "Acknowledgement",
    "ActionResult",
    "Incident",
    "UnknownIncidentError",
    "acknowledge",
    "acknowledge_incident",
    "escape_glob",
    "find_incident",
    "open_incidents",
    "passed_on_to",
    "silence",
    "unacknowledge",
    "unacknowledge_incident",
]
