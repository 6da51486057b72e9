"""Hypothesis strategies for Chaperone's alerts and events.

Use them to test that a channel renders *any* alert, or that a plugin copes with any
event::

    from hypothesis import given
    from chaperone.testing import strategies

    @given(alert=strategies.alerts())
    def test_renders_any_alert(alert): ...

:func:`alerts` draws every shape an :class:`~chaperone.Alert` may take: firing and resolved
(pin ``status`` for an acknowledgement, which only the channels that opt in receive),
every severity and priority, dozens of fields, text with what renderers stumble on (lone
surrogates, control characters, combining marks, right-to-left text, emoji sequences
joined by ZWJ, with skin tones, flags: :data:`UNUSUAL_PIECES`), and
oversized text (titles, summaries and field values given up to about 50,000 characters,
which the alert cuts to its own caps with a marker) so a channel is made to truncate or
split instead of being rejected by its service.
:func:`events` draws every built-in event with valid data and timezone-aware instants.

:func:`hostile_texts` draws what an attacker, a broken encoding or a runaway job puts in
a job's name or error: lone surrogates (a non-UTF-8 name), NUL and other control
characters, terminal escape sequences (colours, screen clears, OSC 8 hyperlinks, window
titles), bidirectional overrides, line breaks of every kind, markup of every service
(``[text](url)``, ``@everyone``, ``<!channel>``, ``<b>``), and strings of up to a
megabyte. :func:`hostile_alerts` builds alerts whose every text is drawn from it: any
channel must deliver them, within its service's limits, without an exception (the
channel contract suite checks it)::

    @given(alert=strategies.hostile_alerts())
    def test_renders_hostile_alerts(alert): ...

Needs hypothesis: install ``chaperone-core[test]``.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from hypothesis import strategies as st

from chaperone._alerts import Alert, AlertStatus, Priority, Severity
from chaperone._events import (
    AlertsGrouped,
    ChaperoneDegraded,
    ChaperoneRecovered,
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Event,
    IncidentRef,
    JobAbandoned,
    JobCompleted,
    JobFailed,
    JobMissed,
    JobRecovered,
    JobStuck,
    JobTimeout,
    MaintenanceEnded,
    ResourceRecovered,
    ResourceViolationDetected,
    RunsOverlapped,
    ScheduleRecovered,
    ThresholdCleared,
    ThresholdExceeded,
    ThresholdMetric,
    ViolationType,
)

__all__ = [
    "EVERY_CHANNEL_TAKES",
    "HOSTILE_LENGTH",
    "HOSTILE_PIECES",
    "OVERSIZED_LENGTH",
    "UNUSUAL_PIECES",
    "alert_types",
    "alert_with_raw_surrogates",
    "alerts",
    "alerts_grouped_events",
    "aware_datetimes",
    "chaperone_degraded_events",
    "chaperone_recovered_events",
    "circuit_breaker_closed_events",
    "circuit_breaker_opened_events",
    "digest_events",
    "durations",
    "events",
    "firing_events",
    "hostile_alerts",
    "hostile_texts",
    "incident_refs",
    "job_abandoned_events",
    "job_classes",
    "job_completed_events",
    "job_failed_events",
    "job_missed_events",
    "job_recovered_events",
    "job_stuck_events",
    "job_timeout_events",
    "maintenance_ended_events",
    "measures",
    "recovery_events",
    "resource_recovered_events",
    "resource_violation_events",
    "runs_overlapped_events",
    "schedule_recovered_events",
    "services",
    "supervision_ids",
    "texts",
    "threshold_cleared_events",
    "threshold_exceeded_events",
]

OVERSIZED_LENGTH = 50_000
"""The longest text :func:`texts` draws with ``oversized=True``: far past any service's
limit (Slack's 3,000-character blocks, PagerDuty's 1,024-character summary, ...).
"""

_EARLIEST = datetime(2000, 1, 1)
_LATEST = datetime(2100, 1, 1)
_MAX_OFFSET = timedelta(hours=23, minutes=59)


UNUSUAL_PIECES: tuple[str, ...] = (
    # Lone surrogates: a non-UTF-8 byte in a job's name (``$'job-\xff-name'``).
    "\udcff",
    "\ud83d",
    # Control characters, an escape sequence, line breaks of every kind.
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\r\n",
    "\u2028",
    "\t",
    # Combining marks: an accent, a stack of them, a keycap.
    "e\u0301",
    "a\u0300\u0301\u0302\u0303\u0304\u0305",
    "1\ufe0f\u20e3",
    # Right-to-left text, and the marks and overrides that reorder a line.
    "\u0645\u0631\u062d\u0628\u0627",
    "\u05e9\u05dc\u05d5\u05dd",
    "\u200f",
    "\u202e",
    # Emoji sequences: joined by ZWJ, with skin tones, flags, a tag sequence.
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f468\U0001f3fd\u200d\U0001f4bb",
    "\U0001f44d\U0001f3ff",
    "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "\u2764\ufe0f",
)
"""What :func:`texts` mixes into the text it draws: the characters every renderer must
measure, clean and cut without error or damage."""


def _characters(*, lone_surrogates: bool = False) -> st.SearchStrategy[str]:
    """Any character; lone surrogates only when asked (no encoder accepts them)."""
    return st.characters(codec=None, exclude_categories=() if lone_surrogates else ["Cs"])


def _unusual(*, min_size: int, max_size: int, lone_surrogates: bool) -> st.SearchStrategy[str]:
    """Pieces of :data:`UNUSUAL_PIECES` mixed with any characters, ``min_size`` to
    ``max_size`` characters (cut there, through a sequence or not).
    """
    pieces = [piece for piece in UNUSUAL_PIECES if lone_surrogates or not _is_surrogate(piece)]
    piece = st.one_of(
        st.sampled_from(pieces),
        st.text(_characters(lone_surrogates=lone_surrogates), min_size=1, max_size=4),
    )
    return st.lists(piece, min_size=min_size, max_size=max(min_size, 6)).map(
        lambda parts: "".join(parts)[:max_size]
    )


def _is_surrogate(piece: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in piece)


def texts(
    *, min_size: int = 0, oversized: bool = True, lone_surrogates: bool = True
) -> st.SearchStrategy[str]:
    """Text of any Unicode, often with the pieces of :data:`UNUSUAL_PIECES` in it: lone
    surrogates (unless ``lone_surrogates=False``), control characters and escape
    sequences, combining marks, right-to-left text, and emoji sequences (joined by ZWJ,
    with skin tones, flags).

    With ``oversized`` (the default), sometimes a long text: a drawn piece repeated up to
    :data:`OVERSIZED_LENGTH` characters, which costs hypothesis little to draw.
    """
    characters = _characters(lone_surrogates=lone_surrogates)
    short = st.one_of(
        st.text(characters, min_size=min_size, max_size=80),
        _unusual(min_size=min_size, max_size=max(80, min_size), lone_surrogates=lone_surrogates),
    )
    if not oversized:
        return short
    long = st.builds(
        _repeat_to,
        st.one_of(
            st.text(characters, min_size=1, max_size=40),
            _unusual(min_size=1, max_size=40, lone_surrogates=lone_surrogates),
        ),
        st.integers(min_value=max(min_size, 1000), max_value=OVERSIZED_LENGTH),
    )
    return st.one_of(short, short, long)


def _repeat_to(piece: str, length: int) -> str:
    return (piece * (length // len(piece) + 1))[:length]


HOSTILE_LENGTH = 1_048_576
"""The longest text :func:`hostile_texts` draws: a megabyte of characters."""

HOSTILE_PIECES: tuple[str, ...] = (
    # Lone surrogates: a non-UTF-8 byte in a command line (``$'job-\xff-name'``).
    "\udcff",
    "\ud800",
    "\udfff",
    # Control characters, C0 and C1.
    "\x00",
    "\r",
    "\x07",
    "\x08",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\x9d",
    # Terminal escape sequences: colour, screen and line clearing, cursor moves, a reset,
    # a window title, an OSC 8 hyperlink, a device control string, a C1 CSI.
    "\x1b[31m",
    "\x1b[0m",
    "\x1b[2J",
    "\x1b[1A\x1b[2K",
    "\x1bc",
    "\x1b]0;pwned\x07",
    "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\",
    "\x1bP+q\x1b\\",
    "\x9b31m",
    "\x1b[",
    "\x1b]",
    # Bidirectional embeddings, overrides and isolates (they reorder a console line).
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    # Line breaks of every kind, and a tab.
    "\n",
    "\r\n",
    "\u2028",
    "\u2029",
    "\t",
    # Markup of the services and of a terminal table.
    "[click](https://evil.example/)",
    "@everyone",
    "@here",
    "<@123456789>",
    "<!channel>",
    "<https://evil.example/|click>",
    "**bold** _it_ ~~x~~ `code` ||spoiler||",
    "# header\n> quote\n- item",
    "<b>bold</b><script>alert(1)</script>",
    "&amp; &lt;",
    "[/bold][link=https://evil.example/]rich[/link]",
    # Wide, combining and astral characters.
    "\U0001f6a8",
    "e\u0301",
    "\u200b",
    "\ufeff",
)
"""The pieces :func:`hostile_texts` puts together."""


def hostile_texts(*, max_length: int = HOSTILE_LENGTH) -> st.SearchStrategy[str]:
    """Text meant to break whatever shows, stores or sends it (see the module's doc):
    hostile pieces mixed with any Unicode, lone surrogates included, and sometimes a piece
    repeated to a length of up to ``max_length`` characters (a megabyte by default).
    """
    anything = st.characters(codec=None, categories=None, exclude_categories=())
    piece = st.one_of(
        st.sampled_from(HOSTILE_PIECES),
        st.sampled_from(UNUSUAL_PIECES),
        st.text(anything, max_size=8),
    )
    mixed = st.lists(piece, max_size=12).map("".join)
    if max_length <= 80:
        return mixed.map(lambda text: text[:max_length])
    long = st.builds(
        _repeat_to,
        st.lists(piece, min_size=1, max_size=4).map("".join).filter(bool),
        st.integers(min_value=81, max_value=max_length),
    )
    return st.one_of(mixed, mixed, long)


def _names(*, lone_surrogates: bool = False) -> st.SearchStrategy[str]:
    """Short non-empty text that reads like an identifier, sometimes with odd characters
    (lone surrogates only when asked: events keep their text as it is given).
    """
    plain = st.text(string.ascii_letters + string.digits + "_-.:/\\", min_size=1, max_size=40)
    odd = _unusual(min_size=1, max_size=40, lone_surrogates=lone_surrogates)
    return st.one_of(plain, st.text(_characters(), min_size=1, max_size=40), odd)


def alert_types() -> st.SearchStrategy[str]:
    """Alert types: the built-in ones, or any identifier a plugin might use."""
    return st.one_of(
        st.sampled_from(
            ["job_stuck", "job_timeout", "circuit_breaker", "resource_violation", "threshold"]
        ),
        st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True),
    )


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Timezone-aware instants between 2000 and 2100, in UTC or any fixed offset."""
    offsets = st.one_of(
        st.just(UTC),
        st.builds(timezone, st.timedeltas(min_value=-_MAX_OFFSET, max_value=_MAX_OFFSET)),
    )
    return st.datetimes(min_value=_EARLIEST, max_value=_LATEST, timezones=offsets)


def durations(
    *, min_value: timedelta = timedelta(0), max_value: timedelta = timedelta(days=30)
) -> st.SearchStrategy[timedelta]:
    """Non-negative durations (up to 30 days unless told), microseconds included."""
    return st.timedeltas(min_value=min_value, max_value=max_value)


def measures(*, max_value: float = 1e9) -> st.SearchStrategy[float]:
    """Finite non-negative measurements (megabytes, percent, seconds, counts)."""
    return st.floats(min_value=0, max_value=max_value, allow_nan=False, allow_infinity=False)


def supervision_ids() -> st.SearchStrategy[str]:
    """Supervision ids: UUIDs as jobs get them, or any short text."""
    return st.one_of(st.uuids().map(str), _names())


def job_classes() -> st.SearchStrategy[str]:
    r"""Job class names: PHP-style ``App\Jobs\X``, Python dotted paths, or any text."""
    word = st.from_regex(r"[A-Z][A-Za-z0-9]{0,20}", fullmatch=True)
    php = st.lists(word, min_size=1, max_size=4).map(lambda parts: "\\".join(["App", *parts]))
    dotted = st.lists(word, min_size=1, max_size=4).map(".".join)
    return st.one_of(php, dotted, _names())


def services() -> st.SearchStrategy[str]:
    """Service names behind a circuit breaker (``payment-gateway``) or any text."""
    return st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True), _names())


def _urls() -> st.SearchStrategy[str]:
    path = st.text(string.ascii_letters + string.digits + "-_/", max_size=60)
    return st.builds(lambda tail: f"https://example.test/{tail}", path)


EVERY_CHANNEL_TAKES: Final = (AlertStatus.FIRING, AlertStatus.RESOLVED)
"""The statuses every channel receives (acknowledgements go only to channels that opt
in), drawn when a strategy's ``status`` is not pinned."""


def alerts(
    *,
    status: AlertStatus | None = None,
    severity: Severity | None = None,
    priority: Priority | None = None,
    oversized: bool = True,
) -> st.SearchStrategy[Alert]:
    """Any valid :class:`~chaperone.Alert`; pin ``status``, ``severity`` or ``priority``
    to draw only alerts with that value.

    Fields come as a few (any of them oversized) or as 20 to 60 short ones, more than
    Slack, Discord or Teams show in one message. ``oversized=False`` keeps every text
    short (for alerts inside other values, such as a digest's members).
    """
    names = texts(min_size=1, oversized=False)
    fields = st.one_of(
        # A few fields, any of them oversized; or more than any service shows at once.
        st.lists(st.tuples(names, texts(oversized=oversized)), max_size=8),
        st.lists(st.tuples(names, texts(oversized=False)), min_size=20, max_size=60),
    )
    labels = st.dictionaries(_names(lone_surrogates=True), texts(oversized=False), max_size=10)
    return st.builds(
        Alert,
        type=alert_types(),
        key=_names(lone_surrogates=True),
        headline=texts(min_size=1, oversized=False),
        title=texts(min_size=1, oversized=oversized),
        summary=texts(oversized=oversized),
        occurred_at=aware_datetimes(),
        severity=st.just(severity) if severity is not None else st.sampled_from(Severity),
        status=st.just(status) if status is not None else st.sampled_from(EVERY_CHANNEL_TAKES),
        priority=st.just(priority) if priority is not None else st.sampled_from(Priority),
        explanation=texts(oversized=oversized),
        fields=fields,
        job_class=st.none() | job_classes(),
        supervision_id=st.none() | supervision_ids(),
        service=st.none() | services(),
        labels=labels,
        details_url=st.none() | _urls(),
        runbook_url=st.none() | _urls(),
        digest_of=st.none() | st.integers(min_value=0, max_value=10_000),
    )


def _hostile_urls() -> st.SearchStrategy[str]:
    return st.one_of(
        hostile_texts(max_length=80),
        st.builds(lambda tail: f"https://example.test/{tail}", hostile_texts()),
    )


def hostile_alerts(
    *, status: AlertStatus | None = None, max_length: int = HOSTILE_LENGTH
) -> st.SearchStrategy[Alert]:
    """Alerts whose every text (key, headline, title, summary, explanation, field names
    and values, job class, supervision id, service, labels, links) is drawn from
    :func:`hostile_texts`, a few of them up to ``max_length`` characters; up to 60 fields.
    Pin ``status`` to draw only firing or only resolved alerts.
    """
    short = hostile_texts(max_length=80)
    text = hostile_texts(max_length=max_length)
    fields = st.one_of(
        st.lists(st.tuples(short, text), max_size=6),
        st.lists(st.tuples(short, short), min_size=20, max_size=60),
    )
    return st.builds(
        Alert,
        type=alert_types(),
        key=st.one_of(short, text),
        headline=short,
        title=text,
        summary=text,
        occurred_at=aware_datetimes(),
        severity=st.sampled_from(Severity),
        status=st.just(status) if status is not None else st.sampled_from(EVERY_CHANNEL_TAKES),
        priority=st.sampled_from(Priority),
        explanation=text,
        fields=fields,
        job_class=st.none() | text,
        supervision_id=st.none() | short,
        service=st.none() | short,
        labels=st.dictionaries(short, short, max_size=8),
        details_url=st.none() | _hostile_urls(),
        runbook_url=st.none() | _hostile_urls(),
        digest_of=st.none() | st.integers(min_value=0, max_value=10_000),
    )


# -- events --------------------------------------------------------------------------------


def job_stuck_events() -> st.SearchStrategy[JobStuck]:
    """:class:`~chaperone.JobStuck` events, with or without a last heartbeat."""
    return st.builds(
        JobStuck,
        supervision_id=supervision_ids(),
        job_class=job_classes(),
        stuck_duration=durations(),
        last_heartbeat=st.none() | aware_datetimes(),
        occurred_at=aware_datetimes(),
    )


def job_abandoned_events() -> st.SearchStrategy[JobAbandoned]:
    """:class:`~chaperone.JobAbandoned` events: a job whose supervising process went."""
    return st.builds(
        JobAbandoned,
        supervision_id=supervision_ids(),
        job_class=job_classes(),
        supervisor=st.builds("pid {} on {}".format, st.integers(1, 2**22), _names()),
        last_seen=aware_datetimes(),
        occurred_at=aware_datetimes(),
    )


def job_failed_events() -> st.SearchStrategy[JobFailed]:
    """:class:`~chaperone.JobFailed` events: any error text, long ones included."""
    return st.builds(
        JobFailed,
        supervision_id=supervision_ids(),
        job_class=job_classes(),
        error=texts(),
        duration=durations(),
        occurred_at=aware_datetimes(),
    )


def _schedules() -> st.SearchStrategy[str]:
    """Schedules as alerts print them: cron fields with their zone, or a period."""
    return st.sampled_from(
        ["0 3 * * * (Europe/Berlin)", "*/5 * * * * (UTC)", "every 15m", "every 2s"]
    ) | st.text(max_size=80)


def job_missed_events() -> st.SearchStrategy[JobMissed]:
    """:class:`~chaperone.JobMissed` events: never run or not, one to many runs missed."""
    return st.builds(
        JobMissed,
        job_class=job_classes(),
        schedule=_schedules(),
        expected_at=aware_datetimes(),
        grace=durations(),
        last_run_at=st.none() | aware_datetimes(),
        last_supervision_id=st.none() | supervision_ids(),
        missed_count=st.integers(min_value=1, max_value=10**6),
        occurred_at=aware_datetimes(),
    )


def runs_overlapped_events() -> st.SearchStrategy[RunsOverlapped]:
    """:class:`~chaperone.RunsOverlapped` events: a run started while another ran."""
    return st.builds(
        RunsOverlapped,
        job_class=job_classes(),
        supervision_id=supervision_ids(),
        running_id=supervision_ids(),
        running_since=aware_datetimes(),
        occurred_at=aware_datetimes(),
    )


def schedule_recovered_events() -> st.SearchStrategy[ScheduleRecovered]:
    """:class:`~chaperone.ScheduleRecovered` events: a run started, a pause, a removal."""
    return st.builds(
        ScheduleRecovered,
        job_class=job_classes(),
        reason=st.sampled_from(["its schedule was paused", "its schedule was removed"])
        | texts(oversized=False),
        supervision_id=st.none() | supervision_ids(),
        occurred_at=aware_datetimes(),
    )


def _parts() -> st.SearchStrategy[str]:
    """The parts of Chaperone that can fail, channels and route destinations included."""
    return st.sampled_from(["store", "detection", "outbox"]) | st.builds(
        "channel:{}".format, _names()
    )


def chaperone_degraded_events() -> st.SearchStrategy[ChaperoneDegraded]:
    """:class:`~chaperone.ChaperoneDegraded` events, any part, any reason."""
    return st.builds(
        ChaperoneDegraded,
        part=_parts(),
        reason=texts(oversized=False, lone_surrogates=False),
        since=aware_datetimes(),
        process=_names(),
        occurred_at=aware_datetimes(),
    )


def chaperone_recovered_events() -> st.SearchStrategy[ChaperoneRecovered]:
    """:class:`~chaperone.ChaperoneRecovered` events, any part."""
    return st.builds(
        ChaperoneRecovered,
        part=_parts(),
        since=aware_datetimes(),
        process=_names(),
        occurred_at=aware_datetimes(),
    )


def _job_timeout(
    supervision_id: str, job_class: str, timeout: timedelta, over: timedelta, at: datetime
) -> JobTimeout:
    return JobTimeout(
        supervision_id=supervision_id,
        job_class=job_class,
        timeout=timeout,
        actual_duration=timeout + over,
        occurred_at=at,
    )


def job_timeout_events() -> st.SearchStrategy[JobTimeout]:
    """:class:`~chaperone.JobTimeout` events whose job ran at or past its timeout."""
    return st.builds(
        _job_timeout,
        supervision_ids(),
        job_classes(),
        durations(max_value=timedelta(days=1)),
        durations(max_value=timedelta(days=1)),
        aware_datetimes(),
    )


def _breaker_opened(
    service: str, failures: int, opened_at: datetime, retry_in: timedelta | None
) -> CircuitBreakerOpened:
    return CircuitBreakerOpened(
        service=service,
        failure_count=failures,
        opened_at=opened_at,
        retry_at=None if retry_in is None else opened_at + retry_in,
        occurred_at=opened_at,
    )


def circuit_breaker_opened_events() -> st.SearchStrategy[CircuitBreakerOpened]:
    """:class:`~chaperone.CircuitBreakerOpened` events, with or without a next trial time."""
    return st.builds(
        _breaker_opened,
        services(),
        st.integers(min_value=1, max_value=1_000_000),
        aware_datetimes(),
        st.none() | durations(max_value=timedelta(hours=1)),
    )


def _violation(
    supervision_id: str,
    job_class: str,
    violation: ViolationType,
    limit: float,
    over: float,
    at: datetime,
) -> ResourceViolationDetected:
    return ResourceViolationDetected(
        supervision_id=supervision_id,
        job_class=job_class,
        violation_type=violation,
        limit=limit,
        # Free disk space is a floor: the job violates it by going under.
        actual=max(0.0, limit - over) if violation is ViolationType.DISK else limit + over,
        occurred_at=at,
    )


def resource_violation_events() -> st.SearchStrategy[ResourceViolationDetected]:
    """:class:`~chaperone.ResourceViolationDetected` events past their limit, any type
    (over it; under it for free disk space, which is a floor).
    """
    return st.builds(
        _violation,
        supervision_ids(),
        job_classes(),
        st.sampled_from(ViolationType),
        measures(max_value=1e6),
        measures(max_value=1e6),
        aware_datetimes(),
    )


def _threshold(
    metric: ThresholdMetric,
    subject: str,
    threshold: float,
    over: float,
    window: timedelta | None,
    at: datetime,
) -> ThresholdExceeded:
    return ThresholdExceeded(
        metric=metric,
        subject=subject,
        value=threshold + over,
        threshold=threshold,
        window=window,
        occurred_at=at,
    )


def _subjects() -> st.SearchStrategy[str]:
    return st.one_of(st.just("*"), job_classes())


def threshold_exceeded_events() -> st.SearchStrategy[ThresholdExceeded]:
    """:class:`~chaperone.ThresholdExceeded` events over their threshold, any metric."""
    return st.builds(
        _threshold,
        st.sampled_from(ThresholdMetric),
        _subjects(),
        measures(max_value=1e6),
        measures(max_value=1e6),
        st.none() | durations(min_value=timedelta(seconds=1), max_value=timedelta(days=1)),
        aware_datetimes(),
    )


def job_recovered_events() -> st.SearchStrategy[JobRecovered]:
    """:class:`~chaperone.JobRecovered` events, from being stuck or timed out."""
    return st.builds(
        JobRecovered,
        supervision_id=supervision_ids(),
        job_class=job_classes(),
        recovered_from=st.sampled_from(["job_stuck", "job_timeout"]),
        reason=st.one_of(
            st.just("heartbeats resumed"), texts(min_size=1, oversized=False, lone_surrogates=False)
        ),
        occurred_at=aware_datetimes(),
    )


def incident_refs() -> st.SearchStrategy[IncidentRef]:
    """References to open incidents, of the built-in alert types or any other."""
    return st.builds(IncidentRef, type=alert_types(), key=_names())


def job_completed_events() -> st.SearchStrategy[JobCompleted]:
    """:class:`~chaperone.JobCompleted` events, succeeded or failed, resolving 0-4 incidents."""
    return st.builds(
        JobCompleted,
        supervision_id=supervision_ids(),
        job_class=job_classes(),
        duration=durations(),
        failed=st.booleans(),
        error=st.none() | texts(min_size=1, oversized=False, lone_surrogates=False),
        resolves=st.lists(incident_refs(), max_size=4).map(tuple),
        occurred_at=aware_datetimes(),
    )


def circuit_breaker_closed_events() -> st.SearchStrategy[CircuitBreakerClosed]:
    """:class:`~chaperone.CircuitBreakerClosed` events."""
    return st.builds(
        _breaker_closed,
        services(),
        aware_datetimes(),
    )


def _breaker_closed(service: str, at: datetime) -> CircuitBreakerClosed:
    return CircuitBreakerClosed(service=service, closed_at=at, occurred_at=at)


def resource_recovered_events() -> st.SearchStrategy[ResourceRecovered]:
    """:class:`~chaperone.ResourceRecovered` events, any violation type."""
    return st.builds(
        ResourceRecovered,
        supervision_id=supervision_ids(),
        job_class=job_classes(),
        violation_type=st.sampled_from(ViolationType),
        actual=measures(max_value=1e6),
        occurred_at=aware_datetimes(),
    )


def _cleared(
    metric: ThresholdMetric, subject: str, threshold: float, under: float, at: datetime
) -> ThresholdCleared:
    return ThresholdCleared(
        metric=metric,
        subject=subject,
        value=max(0.0, threshold - under),
        threshold=threshold,
        occurred_at=at,
    )


def threshold_cleared_events() -> st.SearchStrategy[ThresholdCleared]:
    """:class:`~chaperone.ThresholdCleared` events back under their threshold."""
    return st.builds(
        _cleared,
        st.sampled_from(ThresholdMetric),
        _subjects(),
        measures(max_value=1e6),
        measures(max_value=1e6),
        aware_datetimes(),
    )


def firing_events() -> st.SearchStrategy[Event]:
    """Any built-in event that opens an incident."""
    return st.one_of(
        job_stuck_events(),
        job_timeout_events(),
        circuit_breaker_opened_events(),
        resource_violation_events(),
        threshold_exceeded_events(),
        job_abandoned_events(),
        job_failed_events(),
        job_missed_events(),
        runs_overlapped_events(),
        chaperone_degraded_events(),
    )


def recovery_events() -> st.SearchStrategy[Event]:
    """Any built-in event that resolves incidents."""
    return st.one_of(
        job_recovered_events(),
        job_completed_events(),
        circuit_breaker_closed_events(),
        resource_recovered_events(),
        threshold_cleared_events(),
        schedule_recovered_events(),
        chaperone_recovered_events(),
    )


def alerts_grouped_events() -> st.SearchStrategy[AlertsGrouped]:
    """:class:`~chaperone.AlertsGrouped` events holding 1 to 10 alerts."""
    return st.builds(
        AlertsGrouped,
        group_key=_names(),
        alerts=st.lists(
            alerts(status=AlertStatus.FIRING, oversized=False), min_size=1, max_size=10
        ),
        window=durations(),
        window_started=aware_datetimes(),
        sent_individually=st.integers(min_value=0, max_value=1000),
        occurred_at=aware_datetimes(),
    )


def maintenance_ended_events() -> st.SearchStrategy[MaintenanceEnded]:
    """:class:`~chaperone.MaintenanceEnded` events, with or without suppressed alerts."""
    return st.builds(
        MaintenanceEnded,
        window_id=_names(),
        started_at=aware_datetimes(),
        ended_at=aware_datetimes(),
        reason=texts(oversized=False, lone_surrogates=False),
        matches=texts(min_size=1, oversized=False, lone_surrogates=False),
        suppressed=st.integers(min_value=0, max_value=100_000),
        by_type=st.dictionaries(alert_types(), st.integers(min_value=1, max_value=1000)),
        examples=st.lists(
            texts(min_size=1, oversized=False, lone_surrogates=False), max_size=10
        ).map(tuple),
        missed_runs=st.lists(
            texts(min_size=1, oversized=False, lone_surrogates=False), max_size=10
        ).map(tuple),
        occurred_at=aware_datetimes(),
    )


def digest_events() -> st.SearchStrategy[Event]:
    """Events the fatigue controls raise: a group's digest, a maintenance summary."""
    return st.one_of(alerts_grouped_events(), maintenance_ended_events())


def events() -> st.SearchStrategy[Event]:
    """Any built-in event (firing, recovery or digest) with valid data and an
    ``occurred_at``.
    """
    return st.one_of(firing_events(), recovery_events(), digest_events())


def alert_with_raw_surrogates(occurred_at: datetime) -> Alert:
    """An alert whose every text holds lone surrogates, set past the alert's own cleaning
    (which would have replaced them), and long enough to be cut: what a renderer must still
    render within its service's limits, encoded as UTF-8 (each surrogate as U+FFFD).
    """
    alert = Alert(
        type="job_failed",
        key="k\udcff",
        headline="Job \udcff Failed",
        title="Job Failed: app-\udcff",
        summary="s\udcff",
        fields={"E\udcff": "v\udfff"},
        occurred_at=occurred_at,
    )
    for name in ("key", "title", "summary", "explanation", "job_class"):
        object.__setattr__(alert, name, "x\udcff (y) & <z>" * 300)
    object.__setattr__(alert, "details_url", "https://example.test/\udcff (y)")
    object.__setattr__(alert, "fields", (("n\udcff", "v\ud800" * 2000),))
    return alert
