"""Never silent: the fault matrix of Chaperone's own failures, run for real.

Each row is one way production breaks, reproduced with real ``chaperone`` processes
(``chaperone run``, ``chaperone monitor`` and ``chaperone serve`` on one store), real
SQLite files (one on a small tmpfs that fills up), a real Redis server, and loopback
webhooks (the fixture plugin's ``webhook`` channel). Channels: ``log`` (the console,
read from each process's standard error), ``database`` and ``webhook``. For each row:

- the job ran to its own end or to its limit;
- the job's trouble (its timeout, its silence) reached the console and the webhook;
- when a part of Chaperone failed (the store, a channel), a ``chaperone_degraded``
  alert reached the console and the webhook, and ``GET /health`` answered 503 while the
  fault lasted and 200 after it; when the trouble was in the job's own input (a name
  that is not UTF-8, a 1 MB error, a signal, a process group), nothing of Chaperone's
  failed, no degraded alert was sent, and health stayed answerable and ended healthy;
- once the store was back, nothing was left in the outbox and the webhook answered each
  of the job's alerts once.

The rows run four at a time; each has its own folder, store, servers and processes.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import psutil
import pytest

from chaperone import SystemClock
from chaperone._outbox import DUE_INDEX, ENTRY_PREFIX
from chaperone.store import open_store
from chaperone.supervision._listing import list_jobs
from chaperone.testing.redis_server import RedisServer, free_port, redis_server_or_skip
from helpers.alert_webhook import AlertWebhook, Seen
from helpers.cli import (
    CHAPERONE,
    CliResult,
    clean_environ,
    finish_cli,
    run_cli,
    start_cli,
    store_url,
)
from helpers.report import report
from helpers.serve import Served, serving

ROW_TIMEOUT = 150.0
"""Seconds any one row may take before the matrix gives up on it."""
RUN_TIMEOUT = 60.0
HEALTH_WAIT = 30.0
TITLES = {
    "job_timeout": "Job Timeout",
    "job_stuck": "Job Stuck",
    "chaperone_degraded": "Chaperone Degraded",
}
"""The console line's headline of each alert type: ``[FIRING] <headline>: ...``."""
HEARTBEATS = f"for i in 1 2 3; do {CHAPERONE} heartbeat; sleep 0.3; done"
"""A shell job's three heartbeats, a tenth of a second apart, before it falls silent."""


# -- the world of one row ---------------------------------------------------------------


@attrs.define
class Rig:
    """One row's store, webhook, ``chaperone serve`` and ``chaperone monitor``."""

    folder: Path
    url: str
    env: dict[str, str]
    webhook: AlertWebhook
    served: Served
    monitor: subprocess.Popen[bytes] | None
    started: float = attrs.field(factory=time.monotonic)
    before_mend: Counter[tuple[str, str, str]] | None = None
    """What the webhook had answered when the fault was mended (None: not a store fault)."""

    def mended(self) -> None:
        """Note that the fault is over now."""
        self.before_mend = self.webhook.incidents()

    def run(self, *args: str, timeout: float = RUN_TIMEOUT) -> CliResult:
        """Run ``chaperone *args`` here to its end."""
        return run_cli(*args, cwd=self.folder, env=self.env, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start ``chaperone *args`` here."""
        return start_cli(args, cwd=self.folder, env=self.env)

    def python(self, script: str) -> subprocess.Popen[str]:
        """Start a Python job script here."""
        path = self.folder / "job.py"
        path.write_text(textwrap.dedent(script), encoding="utf-8")
        return subprocess.Popen(
            [sys.executable, str(path)],
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )

    def health(self) -> tuple[int, list[str]]:
        """``GET /health``: the status, and the names of the checks that failed."""
        try:
            response = httpx.get(f"{self.served.url}/health", timeout=10)
        except httpx.HTTPError as exc:
            return 0, [f"no answer: {exc}"]
        checks = response.json().get("checks", {})
        return response.status_code, sorted(n for n, c in checks.items() if not c["ok"])

    def wait_health(self, *, healthy: bool, timeout: float = HEALTH_WAIT) -> tuple[int, list[str]]:
        """Poll ``/health`` until it says ``healthy`` (200) or not (503); the last answer."""
        wanted = 200 if healthy else 503
        deadline = time.monotonic() + timeout
        answer = self.health()
        while answer[0] != wanted and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = self.health()
        return answer

    def wait_alert(self, alert_type: str, key: str | None = None, status: str = "firing") -> bool:
        """Wait (at most 40 s) until the webhook answered such an alert."""
        return self.webhook.wait_for(
            lambda seen: any(
                s.type == alert_type and s.status == status and key in (None, s.key) for s in seen
            ),
            40,
        )

    def monitor_log(self) -> str:
        """What ``chaperone monitor`` wrote to standard error."""
        path = self.folder / "monitor.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def outbox_left(self) -> int:
        """Entries in the outbox, and due-index members, left in the store."""
        store = open_store(self.url, SystemClock())
        try:
            members = store.due(DUE_INDEX, math.inf, 10_000)
            return len(members) + len(store.keys(ENTRY_PREFIX))
        finally:
            store.close()

    def jobs(self) -> list[dict[str, Any]]:
        """The job records in the store."""
        store = open_store(self.url, SystemClock())
        try:
            return list_jobs(store, time.time())
        finally:
            store.close()


@contextmanager
def rig(
    folder: Path,
    url: str,
    *,
    toml: str | None = None,
    **variables: str,
) -> Iterator[Rig]:
    """Start the webhook, ``chaperone monitor`` (every 0.3 s, its standard error in
    ``monitor.log``) and ``chaperone serve`` on the store at ``url``; stop them after.
    """
    with ExitStack() as stack:
        webhook = stack.enter_context(AlertWebhook())
        env = clean_environ(
            folder,
            CHAPERONE_STORE=url,
            CHAPERONE_ALERT_CHANNELS="log,database,webhook",
            CHAPERONE_WEBHOOK_URL=webhook.url,
            CHAPERONE_LOG_FORMAT="json",
            CHAPERONE_STORE_PROBE_INTERVAL="0.5",
            CHAPERONE_DELIVERY_TIMEOUT="2",
            CHAPERONE_DELIVERY_MAX_BACKOFF="0.5",
            CHAPERONE_DELIVERY_EXIT_GRACE="3",
            CHAPERONE_ALERT_GROUPING="false",
            **variables,
        )
        if toml is not None:
            (folder / "chaperone.toml").write_text(toml, encoding="utf-8")
        log = stack.enter_context((folder / "monitor.log").open("wb"))
        monitor = subprocess.Popen(
            [str(CHAPERONE), "monitor", "--interval", "0.3"],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        stack.callback(_stop, monitor)
        served = stack.enter_context(serving(env, folder))
        yield Rig(folder, url, env, webhook, served, monitor)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# -- what a row ends with ---------------------------------------------------------------


@attrs.define
class RowResult:
    """What one row saw."""

    name: str
    fault: bool
    """Whether a part of Chaperone failed (rather than the job's input being odd)."""
    trouble: str
    """The alert type of the job's trouble."""
    job_ran: bool
    job_detail: str
    logs: str
    webhook: list[Seen]
    health_during: tuple[int, list[str]] | None
    health_after: tuple[int, list[str]]
    outbox_left: int
    before_mend: Counter[tuple[str, str, str]] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)
    skipped: str | None = None

    def console_fired(self, alert_type: str) -> bool:
        """Whether some process's console showed ``[FIRING] <headline>``."""
        return f"[FIRING] {TITLES[alert_type]}" in self.logs

    def webhook_fired(self, alert_type: str) -> bool:
        """Whether the webhook answered a firing alert of ``alert_type``."""
        return any(s.type == alert_type and s.status == "firing" for s in self.webhook)

    def job_incidents(self) -> Counter[tuple[str, str, str]]:
        """How many times the webhook answered each of the job's alerts."""
        return Counter(s.incident for s in self.webhook if s.type != "chaperone_degraded")


def finished(
    name: str,
    r: Rig,
    *,
    fault: bool,
    trouble: str,
    job_ran: bool,
    job_detail: str,
    job_logs: str,
    health_during: tuple[int, list[str]] | None,
    **extra: Any,
) -> RowResult:
    """Wait for health after the fault, then gather what the row ends with."""
    after = r.wait_health(healthy=True)
    time.sleep(0.5)  # a duplicate sent at the end would arrive now
    return RowResult(
        name=name,
        fault=fault,
        trouble=trouble,
        job_ran=job_ran,
        job_detail=job_detail,
        logs=job_logs + r.monitor_log(),
        webhook=r.webhook.seen,
        health_during=health_during,
        health_after=after,
        outbox_left=r.outbox_left(),
        before_mend=r.before_mend,
        extra=extra,
    )


# -- the rows ---------------------------------------------------------------------------


def falls_silent(
    name: str, r: Rig, *, breaks: Callable[[], object], mends: Callable[[], object]
) -> RowResult:
    """A shell job under ``chaperone run`` heartbeats three times and falls silent; then
    ``breaks`` breaks the store; once the stuck alert, unhealthy health and the degraded
    alert were seen, ``mends`` mends it, and the job runs to its end.
    """
    process = r.start(
        "run", "--name", "falls-silent", "--heartbeat-interval", "0.5",
        "--missed-heartbeats", "2", "--", "sh", "-c",
        f"{HEARTBEATS}; touch {r.folder}/silent; sleep 12",
    )  # fmt: skip
    wait_for((r.folder / "silent").exists)
    breaks()
    r.wait_alert("job_stuck")
    during = r.wait_health(healthy=False)
    r.wait_alert("chaperone_degraded", "store")
    r.mended()
    mends()
    job = finish_cli(process, ["run"], RUN_TIMEOUT)
    return finished(
        name,
        r,
        fault=True,
        trouble="job_stuck",
        job_ran=job.returncode == 0,
        job_detail=str(job),
        job_logs=job.stderr,
        health_during=during,
    )


def corrupt_file(folder: Path) -> RowResult:
    """The store is a file that is not a database: the job runs all the same."""
    path = folder / "c.db"
    path.write_bytes(b"this is not a SQLite database " * 200)
    with rig(folder, store_url(path)) as r:
        job = r.run(
            "run", "--name", "report", "--timeout", "1", "--kill-on-timeout", "--",
            "sh", "-c", "echo JOB-RAN; sleep 5",
        )  # fmt: skip
        during = r.wait_health(healthy=False)
        r.wait_alert("chaperone_degraded", "store")
        r.mended()
        for leftover in folder.glob("c.db*"):
            leftover.unlink()
        return finished(
            "corrupt SQLite file",
            r,
            fault=True,
            trouble="job_timeout",
            job_ran=job.returncode == 143 and "JOB-RAN" in job.stdout,
            job_detail=str(job),
            job_logs=job.stderr,
            health_during=during,
        )


def disk_full(folder: Path) -> RowResult:
    """The disk under the store fills while a monitor runs and a job falls silent."""
    disk = folder / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        return _skipped("disk full", f"cannot mount a tmpfs here: {mounted.stderr!r}")
    try:
        with rig(folder, store_url(disk / "c.db")) as r:
            filler = disk / "filler"
            return falls_silent("disk full", r, breaks=lambda: _fill(filler), mends=filler.unlink)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the disk is full (unbuffered: a buffered file
    flushed the part that did not fit once more as it closed, and raised ENOSPC there)."""
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


def file_deleted(folder: Path) -> RowResult:
    """The SQLite file is deleted under a running monitor, then a job gets stuck."""
    path = folder / "c.db"
    with rig(folder, store_url(path)) as r:
        process = r.start(
            "run", "--name", "orphaned-file", "--heartbeat-interval", "0.5",
            "--missed-heartbeats", "2", "--", "sh", "-c",
            f"{HEARTBEATS}; touch {folder}/silent; sleep 10",
        )  # fmt: skip
        wait_for(lambda: bool(r.jobs()))
        r.mended()  # a deleted file is mended by Chaperone itself, within a second
        for leftover in folder.glob("c.db*"):
            leftover.unlink()
        r.wait_alert("job_stuck")
        r.wait_alert("chaperone_degraded", "store", "resolved")
        job = finish_cli(process, ["run"], RUN_TIMEOUT)
        result = finished(
            "SQLite file deleted",
            r,
            fault=True,
            trouble="job_stuck",
            job_ran=job.returncode == 0,
            job_detail=str(job),
            job_logs=job.stderr,
            health_during=None,  # repaired within a second: see the degraded alerts
        )
        result.extra["jobs in the new file"] = [j["name"] for j in r.jobs()]
        return result


def redis_down_at_start(folder: Path) -> RowResult:
    """Redis is unreachable when a job with a timeout starts; it comes back later."""
    server = RedisServer(redis_server_or_skip(), folder / "redis", appendonly=True)
    (folder / "redis").mkdir()
    server.port = free_port()
    url = server.url(prefix="m:", retries="0", connect_timeout="0.5", timeout="1")
    try:
        with rig(folder, url) as r:
            job = r.run("run", "--name", "nightly", "--timeout", "1", "--kill-on-timeout",
                        "--", "sleep", "5")  # fmt: skip
            during = r.wait_health(healthy=False)
            r.wait_alert("chaperone_degraded", "store")
            r.mended()
            server.start()
            return finished(
                "Redis unreachable at start",
                r,
                fault=True,
                trouble="job_timeout",
                job_ran=job.returncode == 143,
                job_detail=str(job),
                job_logs=job.stderr,
                health_during=during,
            )
    finally:
        server.stop()


def redis_lost_mid_run(folder: Path) -> RowResult:
    """Redis goes away while a job runs, the job falls silent, Redis comes back."""
    (folder / "redis").mkdir()
    with RedisServer(redis_server_or_skip(), folder / "redis", appendonly=True) as server:
        url = server.url(prefix="m:", retries="0", connect_timeout="0.5", timeout="1")
        with rig(folder, url) as r:
            return falls_silent(
                "Redis lost mid-run and back", r, breaks=server.stop, mends=server.start
            )


HANGING_ROUTES = """
[[alerting.routes]]
name = "chat"
channels = ["webhook"]
continue = true
webhook = {{ url = "{chat}" }}

[[alerting.routes]]
name = "pager"
channels = ["log", "database", "webhook"]
"""


def hanging_webhook(folder: Path) -> RowResult:
    """One webhook (the chat route's) accepts connections and never answers; the other
    (the pager route's, the default webhook) works."""
    with AlertWebhook(hanging=True) as chat:
        with rig(
            folder,
            store_url(folder / "c.db"),
            toml=HANGING_ROUTES.format(chat=chat.url),
            CHAPERONE_DELIVERY_MAX_ATTEMPTS="20",
            CHAPERONE_DELIVERY_MAX_TOTAL="10m",
        ) as r:
            started = time.monotonic()
            job = r.run(
                "run", "--name", "hung", "--heartbeat-interval", "0.3",
                "--missed-heartbeats", "2", "--timeout", "3", "--kill-on-timeout", "--",
                "sleep", "60",
            )  # fmt: skip
            ran_for = time.monotonic() - started
            r.wait_alert("chaperone_degraded", "channel:webhook@chat")
            during = r.wait_health(healthy=False)
            r.mended()
            chat.hanging = False
            wait_for(lambda: r.outbox_left() == 0, 40)
            r.wait_alert("chaperone_degraded", "channel:webhook@chat", "resolved")
            result = finished(
                "hanging webhook",
                r,
                fault=True,
                trouble="job_timeout",
                job_ran=job.returncode == 143,
                job_detail=str(job),
                job_logs=job.stderr,
                health_during=during,
                chaperone_run_seconds=round(ran_for, 2),
            )
        result.extra["chat incidents"] = Counter(s.incident for s in chat.seen)
        return result


def lone_surrogate(folder: Path) -> RowResult:
    """A job name that is not UTF-8 (what the shell passes for ``$'job-\\xff-name'``)."""
    name = os.fsdecode(b"job-\xff-name")
    with rig(folder, store_url(folder / "c.db")) as r:
        job = r.run("run", "--name", name, "--timeout", "1", "--kill-on-timeout",
                    "--", "sleep", "3")  # fmt: skip
        r.wait_alert("job_timeout")
        result = finished(
            "job name not UTF-8",
            r,
            fault=False,
            trouble="job_timeout",
            job_ran=job.returncode == 143,
            job_detail=str(job),
            job_logs=job.stderr,
            health_during=None,
        )
        result.extra["titles"] = [s.title for s in result.webhook if s.type == "job_timeout"]
        history = r.run("history", "--json")
        result.extra["history titles"] = [row["title"] for row in history.json()]
        return result


MEGABYTE_JOB = """
import time

import chaperone

with chaperone.supervise("big-error", timeout=0.5):
    time.sleep(2.5)
    raise RuntimeError("E" * 1_000_000)
"""


def megabyte_error(folder: Path) -> RowResult:
    """A job times out, then fails with a 1 MB error message."""
    with rig(folder, store_url(folder / "c.db")) as r:
        process = r.python(MEGABYTE_JOB)
        out, err = process.communicate(timeout=RUN_TIMEOUT)
        r.wait_alert("job_timeout", status="resolved")
        result = finished(
            "1 MB error message",
            r,
            fault=False,
            trouble="job_timeout",
            job_ran=process.returncode == 1 and "RuntimeError" in err,
            job_detail=f"exit {process.returncode}: {out[-500:]} {err[-500:]}",
            job_logs=err[-200_000:],
            health_during=None,
        )
        started = time.monotonic()
        history = r.run("history")
        result.extra["history bytes"] = len(history.stdout.encode())
        result.extra["history seconds"] = round(time.monotonic() - started, 2)
        result.extra["store bytes"] = sum(p.stat().st_size for p in folder.glob("c.db*"))
        resolved = [s for s in result.webhook if s.status == "resolved"]
        result.extra["error field chars"] = max(
            (len(s.fields.get("Error", "")) for s in resolved), default=0
        )
        return result


LOCKED_JOB = """
import json
import time

import chaperone

with chaperone.supervise("locked", timeout=2) as job:
    open("started", "w").close()
    worst, calls = 0.0, 0
    end = time.monotonic() + 17
    while time.monotonic() < end:
        before = time.perf_counter()
        job.progress(calls, 100_000)
        worst = max(worst, time.perf_counter() - before)
        calls += 1
        time.sleep(0.005)
print(json.dumps({"worst_ms": worst * 1000, "calls": calls}))
"""

LOCKER = """
import sqlite3
import sys
import time

connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[3]))
connection.execute("COMMIT")
"""


def locked_store(folder: Path) -> RowResult:
    """Another process holds the SQLite store's write lock for 13 s while a Python job
    reports progress every 5 ms and passes its timeout."""
    path = folder / "c.db"
    with rig(folder, store_url(path)) as r:
        process = r.python(LOCKED_JOB)
        wait_for((folder / "started").exists)
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path), str(folder / "locked"), "13"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for((folder / "locked").exists)
        during = r.wait_health(healthy=False)
        r.wait_alert("job_timeout")
        r.mended()
        locker.wait(60)
        out, err = process.communicate(timeout=RUN_TIMEOUT)
        measured = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        return finished(
            "SQLite store locked",
            r,
            fault=True,
            trouble="job_timeout",
            job_ran=process.returncode == 0 and bool(measured),
            job_detail=f"exit {process.returncode}: {out[-500:]} {err[-2000:]}",
            job_logs=err,
            health_during=during,
            **measured,
        )


def sighup(folder: Path) -> RowResult:
    """SIGHUP sent to ``chaperone run``: the job (which ignores it) goes on, chaperone
    goes on supervising, and stops it at its limit."""
    with rig(folder, store_url(folder / "c.db")) as r:
        process = r.start(
            "run", "--name", "hangup", "--timeout", "2", "--kill-on-timeout", "--",
            "sh", "-c", f'trap "" HUP; touch {folder}/started; sleep 8',
        )  # fmt: skip
        wait_for((folder / "started").exists)
        process.send_signal(signal.SIGHUP)
        job = finish_cli(process, ["run"], RUN_TIMEOUT)
        states = [j["state"] for j in r.jobs()]
        return finished(
            "SIGHUP to chaperone run",
            r,
            fault=False,
            trouble="job_timeout",
            job_ran=job.returncode == 143 and states == ["failed"],
            job_detail=f"{job}\nstates: {states}",
            job_logs=job.stderr,
            health_during=None,
        )


def process_group(folder: Path) -> RowResult:
    """``--kill-on-timeout`` on a shell that exits at SIGTERM while a child ignores it."""
    with rig(folder, store_url(folder / "c.db")) as r:
        job = r.run(
            "run", "--name", "group", "--timeout", "1", "--kill-on-timeout", "--",
            "sh", "-c", 'sleep 31 & (trap "" TERM; sleep 33) & wait',
        )  # fmt: skip
        [record] = r.jobs()
        left = _group_members(int(record["pid"]))
        return finished(
            "process group outlives sh",
            r,
            fault=False,
            trouble="job_timeout",
            job_ran=job.returncode == 143 and not left,
            job_detail=f"{job}\nleft in the group: {left}",
            job_logs=job.stderr,
            health_during=None,
        )


def _group_members(pgid: int) -> list[str]:
    """The live (not zombie) processes of group ``pgid``."""
    found = []
    for process in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(" ".join(process.info["cmdline"] or []))
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def _skipped(name: str, reason: str) -> RowResult:
    return RowResult(
        name=name,
        fault=True,
        trouble="",
        job_ran=False,
        job_detail="",
        logs="",
        webhook=[],
        health_during=None,
        health_after=(0, []),
        outbox_left=0,
        skipped=reason,
    )


ROWS: dict[str, Callable[[Path], RowResult]] = {
    "corrupt-file": corrupt_file,
    "disk-full": disk_full,
    "file-deleted": file_deleted,
    "redis-down-at-start": redis_down_at_start,
    "redis-lost-mid-run": redis_lost_mid_run,
    "hanging-webhook": hanging_webhook,
    "lone-surrogate": lone_surrogate,
    "megabyte-error": megabyte_error,
    "locked-store": locked_store,
    "sighup": sighup,
    "process-group": process_group,
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RowResult]:
    """Every row, four at a time. (The fixture plugin's ``webhook`` channel must be
    installed, as it is in the tests session: without it every command exits 2.)"""
    base = tmp_path_factory.mktemp("matrix")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {}
        for name, row in ROWS.items():
            folder = base / name
            folder.mkdir()
            futures[name] = pool.submit(row, folder)
        results = {name: future.result(timeout=ROW_TIMEOUT * 3) for name, future in futures.items()}
    for result in results.values():
        if result.skipped:
            report(f"{result.name:<30} skipped: {result.skipped}")
            continue
        report(
            f"{result.name:<30} job ran: {result.job_ran}; trouble on the webhook: "
            f"{result.webhook_fired(result.trouble)}; degraded alerts: "
            f"{sum(s.type == 'chaperone_degraded' for s in result.webhook)}; health during "
            f"{result.health_during}, after {result.health_after}; outbox left "
            f"{result.outbox_left}; {result.extra}"
        )
    return results


def _row(outcomes: dict[str, RowResult], name: str) -> RowResult:
    result = outcomes[name]
    if result.skipped:
        pytest.skip(result.skipped)
    return result


@pytest.mark.parametrize("name", list(ROWS))
class TestFaultMatrix:
    """Whatever breaks, the job runs, the alert arrives once, and health tells."""

    def test_the_job_ran_to_its_own_end_or_limit(
        self, outcomes: dict[str, RowResult], name: str
    ) -> None:
        """The job ran, and ended as it would have without Chaperone's trouble."""
        result = _row(outcomes, name)
        assert result.job_ran, result.job_detail

    def test_the_jobs_trouble_reached_the_console_and_the_webhook(
        self, outcomes: dict[str, RowResult], name: str
    ) -> None:
        """A ``[FIRING]`` line for the job's trouble on some process's console, and the
        firing alert answered by the webhook."""
        result = _row(outcomes, name)
        assert result.console_fired(result.trouble), result.logs[-3000:]
        assert result.webhook_fired(result.trouble), result.webhook

    def test_chaperone_said_it_was_degraded_exactly_when_it_was(
        self, outcomes: dict[str, RowResult], name: str
    ) -> None:
        """A part of Chaperone failed: a degraded alert on the console and the webhook.
        Only the job's input was odd: no degraded alert at all."""
        result = _row(outcomes, name)
        if result.fault:
            assert result.console_fired("chaperone_degraded"), result.logs[-3000:]
            assert result.webhook_fired("chaperone_degraded"), result.webhook
        else:
            assert not result.webhook_fired("chaperone_degraded"), result.webhook

    def test_health_was_unhealthy_during_and_healthy_after(
        self, outcomes: dict[str, RowResult], name: str
    ) -> None:
        """``GET /health`` answered 503 while the fault lasted (where it lasted longer
        than a repair) and 200 once it was over."""
        result = _row(outcomes, name)
        if result.health_during is not None:
            assert result.health_during[0] == 503, result.health_during
        assert result.health_after == (200, []), result.health_after

    def test_nothing_was_lost_or_sent_twice(
        self, outcomes: dict[str, RowResult], name: str
    ) -> None:
        """Once the store was back the outbox was empty, and nothing the webhook had
        answered was sent again. Without a fault, each of the job's alerts arrived once;
        during one, at most once per process that saw it (each had only its memory to go
        by: the job's own, and the monitor)."""
        result = _row(outcomes, name)
        assert result.outbox_left == 0
        incidents = result.job_incidents()
        assert incidents, "the webhook answered none of the job's alerts"
        if result.before_mend is None:
            assert [key for key, count in incidents.items() if count > 1] == [], incidents
            return
        before = result.before_mend
        again = [
            key for key in before if key[0] != "chaperone_degraded" and incidents[key] > before[key]
        ]
        assert again == [], (before, incidents)
        assert max(incidents.values()) <= 2, incidents


class TestRowSpecifics:
    """What some rows show beyond the common checks."""

    def test_a_deleted_file_leaves_every_process_on_the_new_one(
        self, outcomes: dict[str, RowResult]
    ) -> None:
        """After the deletion, the job's record (carried by chaperone run) is in the new
        file the monitor and health read."""
        result = _row(outcomes, "file-deleted")
        assert result.extra["jobs in the new file"] == ["orphaned-file"]

    def test_a_hanging_webhook_neither_delays_the_job_nor_loses_its_alerts(
        self, outcomes: dict[str, RowResult]
    ) -> None:
        """chaperone run stopped its 3 s job and left within its grace (3 s here); the
        chat webhook, once it answered, got each alert once."""
        result = _row(outcomes, "hanging-webhook")
        assert result.extra["chaperone_run_seconds"] < 3 + 1 + 3 + 5  # start-up included
        chat = result.extra["chat incidents"]
        job_alerts = {k: v for k, v in chat.items() if k[0] != "chaperone_degraded"}
        assert job_alerts
        assert set(job_alerts.values()) == {1}, chat

    def test_a_name_that_is_not_utf8_arrives_readable(self, outcomes: dict[str, RowResult]) -> None:
        """The byte that is not UTF-8 arrives as U+FFFD in the webhook and the history."""
        result = _row(outcomes, "lone-surrogate")
        assert result.extra["titles"]
        assert all("job-\ufffd-name" in title for title in result.extra["titles"])
        assert any("job-\ufffd-name" in title for title in result.extra["history titles"])

    def test_a_megabyte_error_stays_small(self, outcomes: dict[str, RowResult]) -> None:
        """The 1 MB error is cut in the alert; the store and `chaperone history` stay
        small and quick."""
        result = _row(outcomes, "megabyte-error")
        assert 0 < result.extra["error field chars"] < 20_000
        assert result.extra["history bytes"] < 200_000
        assert result.extra["store bytes"] < 2_000_000

    def test_progress_never_waited_for_the_locked_store(
        self, outcomes: dict[str, RowResult]
    ) -> None:
        """Every ``job.progress()`` call returned within 20 ms while the store was locked
        for 13 s (it waited 10 s per call before)."""
        result = _row(outcomes, "locked-store")
        assert result.extra["calls"] > 1000
        assert result.extra["worst_ms"] < 20, result.extra
