"""Every address the pages link to or post to, in one place, under the app's prefix.

The form actions (acknowledge, undo, silence, start and end a maintenance window, pause
and resume a schedule) are answered by routes wired elsewhere; their paths are fixed
here so the forms and those routes agree.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import attrs

__all__ = ["Links"]


def _segment(value: str) -> str:
    """``value`` as one path segment (a ``/`` in it escaped too)."""
    return quote(value, safe="")


def _without_trailing_slash(prefix: str) -> str:
    return prefix.rstrip("/")


@attrs.frozen
class Links:
    """The pages' addresses under ``prefix`` (like ``"/chaperone"``; ``""`` allowed)."""

    prefix: str = attrs.field(converter=_without_trailing_slash)

    def overview(self) -> str:
        """The overview."""
        return f"{self.prefix}/"

    def jobs(self, state: str = "", name: str = "") -> str:
        """The job list, filtered by ``state`` and ``name`` when given."""
        query = urlencode(
            {key: value for key, value in (("state", state), ("name", name)) if value}
        )
        return f"{self.prefix}/jobs" + (f"?{query}" if query else "")

    def job(self, supervision_id: str) -> str:
        """One job's page (the page every alert links to)."""
        return f"{self.prefix}/jobs/{_segment(supervision_id)}"

    def incidents(self) -> str:
        """The open incidents."""
        return f"{self.prefix}/incidents"

    def incident(self, alert_type: str, key: str) -> str:
        """One incident's page (the key may hold ``/``, kept as a path)."""
        return f"{self.prefix}/incidents/{_segment(alert_type)}/{quote(key, safe='/')}"

    def acknowledge(self, alert_type: str, key: str) -> str:
        """Where the Acknowledge form posts (field ``note``)."""
        return f"{self.incident(alert_type, key)}/acknowledge"

    def unacknowledge(self, alert_type: str, key: str) -> str:
        """Where the Undo form posts."""
        return f"{self.incident(alert_type, key)}/unacknowledge"

    def silence(self, alert_type: str, key: str) -> str:
        """Where the Silence form posts (fields ``duration``, ``reason``)."""
        return f"{self.incident(alert_type, key)}/silence"

    def history(self, page: int = 1) -> str:
        """One page of the alert history."""
        return f"{self.prefix}/history" + (f"?page={page}" if page > 1 else "")

    def maintenance(self) -> str:
        """The maintenance windows; the start form posts here too (fields ``duration``,
        ``reason``, ``match_type``, ``match_key``).
        """
        return f"{self.prefix}/maintenance"

    def end_window(self, window_id: str) -> str:
        """Where a window's End button posts."""
        return f"{self.prefix}/maintenance/{_segment(window_id)}/end"

    def schedules(self, state: str = "", page: int = 1) -> str:
        """The schedule list, filtered by ``state`` when given, at page ``page``."""
        pairs = {"state": state, "page": str(page) if page > 1 else ""}
        query = urlencode({key: value for key, value in pairs.items() if value})
        return f"{self.prefix}/schedules" + (f"?{query}" if query else "")

    def pause_schedule(self, job: str) -> str:
        """Where a schedule's Pause button posts."""
        return f"{self.prefix}/schedules/{_segment(job)}/pause"

    def resume_schedule(self, job: str) -> str:
        """Where a schedule's Resume button posts."""
        return f"{self.prefix}/schedules/{_segment(job)}/resume"

    def logout(self) -> str:
        """Where the Sign out button posts."""
        return f"{self.prefix}/logout"

    def static(self, name: str) -> str:
        """A static file (the stylesheet, the refresh script)."""
        return f"{self.prefix}/static/{name}"
