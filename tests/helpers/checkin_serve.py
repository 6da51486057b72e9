"""A real ``chaperone serve`` set up for check-ins: a global ping key, a job's own key in
``chaperone.toml`` and the serve token, in a folder with its own SQLite store; and what
the store says about the check-in jobs afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from chaperone import SystemClock
from chaperone.store import SQLiteStore
from chaperone.supervision import _keys
from chaperone.supervision._records import JobRecord
from helpers.cli import STORE_FILE, clean_environ, store_url
from helpers.serve import Served, serving

__all__ = [
    "BACKUP_KEY",
    "PING_KEY",
    "SCHEDULED",
    "TOKEN",
    "CheckinServer",
    "checkin_server",
    "read_record",
]

PING_KEY = "ping-global-8d3f1a6c"
"""``serve.ping_key``: any job may check in with it."""
BACKUP_KEY = "ping-backup-2b7e9c40"
"""The job ``backup``'s own key (``[serve.ping_keys]``)."""
TOKEN = "serve-token-5a0c7e31"  # noqa: S105 - a test token
"""The serve token, which also takes check-ins."""

SCHEDULED = "nightly.scheduled"
"""A job with a ``[[schedules]]`` entry: its failures alerted, a 2-hour max_runtime."""

CONFIG = f"""\
[serve.ping_keys]
"backup" = "{BACKUP_KEY}"

[[schedules]]
job = "{SCHEDULED}"
cron = "0 3 * * *"
max_runtime = "2h"
"""


@attrs.frozen
class CheckinServer:
    """A running serve, the folder it runs in and its environment."""

    served: Served
    folder: Path
    env: dict[str, str]

    @property
    def ping(self) -> str:
        """The URL the check-ins sit under (``…/chaperone/ping``)."""
        return f"{self.served.url}/chaperone/ping"


@contextmanager
def checkin_server(folder: Path, store_folder: Path | None = None) -> Iterator[CheckinServer]:
    """``chaperone serve`` in ``folder`` with the keys above, channels ``log`` and
    ``database`` (so a monitor's alerts are in the history), its store in
    ``store_folder`` (by default ``folder``); stopped after.
    """
    (folder / "chaperone.toml").write_text(CONFIG, encoding="utf-8")
    env = clean_environ(
        folder,
        CHAPERONE_STORE=store_url((store_folder or folder) / STORE_FILE),
        CHAPERONE_SERVE_PING_KEY=PING_KEY,
        CHAPERONE_SERVE_TOKEN=TOKEN,
        CHAPERONE_ALERT_CHANNELS="log,database",
        CHAPERONE_HEALTH_REQUIRE_MONITOR="false",
    )
    with serving(env, folder) as served:
        yield CheckinServer(served, folder, env)


def read_record(folder: Path, supervision_id: str) -> JobRecord | None:
    """The job record ``supervision_id`` in the store of ``folder``, read now."""
    path = folder / STORE_FILE
    store = SQLiteStore(path, SystemClock(), store_url(path))
    try:
        text = store.get(_keys.job_key(supervision_id))
    finally:
        store.close()
    return None if text is None else JobRecord.from_json(text)
