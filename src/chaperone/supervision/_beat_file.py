"""Heartbeats through a file: how a job under ``chaperone run`` reaches its supervisor
without the store.

``chaperone run`` gives its child ``CHAPERONE_HEARTBEAT_FILE``, a path in a private
folder. ``chaperone heartbeat`` (or anything that replaces that file) writes the
heartbeat there, atomically, and returns; ``chaperone run`` looks at the file every
tenth of a second and counts each new version as a heartbeat of its job. So a shell
job's heartbeat costs no store round trip, and still counts when the store is locked,
full or away.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

import attrs

__all__ = ["HEARTBEAT_FILE_ENV", "BeatFileWatcher", "FileBeat", "write_beat_file"]

HEARTBEAT_FILE_ENV: Final = "CHAPERONE_HEARTBEAT_FILE"
"""The variable naming the heartbeat file of the job ``chaperone run`` supervises."""


@attrs.frozen(kw_only=True)
class FileBeat:
    """One heartbeat read from the file: with progress when it carried some."""

    progress: tuple[int, int | None] | None = None


def write_beat_file(path: Path, progress: tuple[int, int | None] | None = None) -> None:
    """Write a heartbeat (and progress) to ``path``: a new file moved into place, so a
    reader never sees half of one. Raises OSError when the folder is gone.
    """
    body = json.dumps({"progress": None if progress is None else list(progress)})
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(body, encoding="utf-8")
    os.replace(partial, path)


class BeatFileWatcher:
    """Notices each new version of a heartbeat file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None

    def poll(self) -> FileBeat | None:
        """The heartbeat written since the last poll, if any (never raises)."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        version = (stat.st_ino, stat.st_mtime_ns)
        if version == self._seen:
            return None
        self._seen = version
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            raw = data.get("progress") if isinstance(data, dict) else None
            if isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int):
                total = raw[1] if isinstance(raw[1], int) else None
                return FileBeat(progress=(raw[0], total))
        except (OSError, ValueError):
            pass  # replaced again meanwhile, or not ours: a heartbeat all the same
        return FileBeat()
