"""Any text is safe, once, at the boundary: the sanitizer's properties, and hostile text
(lone surrogates, control characters, escape sequences, bidi overrides, a megabyte) through
the alert, the outbox, the history, the event queue, job records and the ``log`` channel,
on real SQLite files and the real Redis server.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import structlog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    IncidentRef,
    JobCompleted,
    JobRecord,
    ManualClock,
    SendContext,
    Settings,
    configure_logging,
)
from chaperone import _sanitize as sanitize
from chaperone._event_codec import decode_event, encode_event
from chaperone._outbox import OutboxEntry, SecretBook
from chaperone._secrets import MASKER
from chaperone._verdicts import Destination, Outcome
from chaperone.builtin.database_channel import read_history, record_delivery
from chaperone.builtin.log_channel import LogChannel
from chaperone.store import SQLiteStore, Store
from chaperone.testing import offline_client, strategies
from chaperone.testing.redis_server import RedisServer
from chaperone.testing.strategies import HOSTILE_LENGTH, HOSTILE_PIECES, hostile_texts

NOW = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LINE_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""What a one-line text never holds: controls (tab and line feed too), line and paragraph
separators, bidi overrides, lone surrogates."""
TEXT_UNSAFE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""What a multi-line text never holds: the same but tab and line feed."""
MARKER = re.compile(r"… \[([\d,]+) characters? cut(?:, sha256:[0-9a-f]{16})?\]$")

ORDINARY = st.text(
    st.characters(categories=["L", "M", "N", "P", "S"], include_characters=" "), max_size=300
)
"""Printable text as people write it: letters, marks, digits, punctuation, symbols, spaces."""


def megabyte_of(piece: str) -> str:
    """``piece`` repeated to a megabyte of characters."""
    return (piece * (HOSTILE_LENGTH // len(piece) + 1))[:HOSTILE_LENGTH]


def alert_texts(alert: Alert) -> tuple[list[str], list[str]]:
    """The alert's one-line texts and its multi-line ones."""
    lines = [alert.key, alert.headline, alert.title]
    lines += [text for text in (alert.job_class, alert.supervision_id, alert.service) if text]
    lines += [text for text in (alert.details_url, alert.runbook_url) if text]
    lines += [name for name, _ in alert.fields]
    lines += [text for pair in alert.labels.items() for text in pair]
    return lines, [alert.summary, alert.explanation, *(value for _, value in alert.fields)]


def alert_size(alert: Alert) -> int:
    """Characters of text the alert holds."""
    lines, texts = alert_texts(alert)
    return sum(map(len, lines)) + sum(map(len, texts))


def assert_safe_alert(alert: Alert) -> None:
    """Every text of ``alert`` is safe and the whole within the alert's bound."""
    lines, texts = alert_texts(alert)
    for text in lines:
        assert not LINE_UNSAFE.search(text), repr(text[:80])
    for text in texts:
        assert not TEXT_UNSAFE.search(text), repr(text[:80])
    assert alert_size(alert) <= sanitize.ALERT_LIMIT
    assert len(alert.fields) <= sanitize.MAX_FIELDS
    assert len(alert.labels) <= sanitize.MAX_LABELS


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One real SQLite file for every example of a module's property tests."""
    path = tmp_path_factory.mktemp("text") / "store.sqlite3"
    store = SQLiteStore(path, ManualClock(NOW), f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def redis_store(redis_server: RedisServer) -> Iterator[Store]:
    """A store on the session's real Redis server, under a prefix of its own."""
    from chaperone.store._redis import RedisStore

    store = RedisStore(redis_server.url(prefix="texts:"), ManualClock(NOW))
    yield store
    store.close()
    redis_server.clear("texts:")


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each real backend in turn, shared by a test's examples (each overwrites what the
    last wrote): JSON written to either must never fail.
    """
    value: Store = request.getfixturevalue(f"{request.param}_store")
    return value


class TestSanitizer:
    """The one place text is made safe: valid, printable, bounded, idempotent."""

    @PROPERTY
    @given(text=hostile_texts())
    @example(text=megabyte_of("".join(HOSTILE_PIECES)))
    @example(text=megabyte_of("\x9d"))
    def test_output_is_safe_bounded_and_idempotent(self, text: str) -> None:
        """Whatever goes in, a line holds no control, line break, bidi override or lone
        surrogate, a multi-line text only tabs and line feeds of those; each is within
        its cap, encodes to UTF-8, and comes through a second pass unchanged.
        """
        for make, unsafe, limit in (
            (sanitize.line, LINE_UNSAFE, sanitize.LINE_LIMIT),
            (sanitize.identity, LINE_UNSAFE, sanitize.LINE_LIMIT),
            (sanitize.text, TEXT_UNSAFE, sanitize.TEXT_LIMIT),
        ):
            safe = make(text)
            assert not unsafe.search(safe), repr(safe[:80])
            assert len(safe) <= limit
            safe.encode("utf-8")
            assert make(safe) == safe
        for clean, unsafe in (
            (sanitize.clean_line, LINE_UNSAFE),
            (sanitize.clean_text, TEXT_UNSAFE),
        ):
            cleaned = clean(text)
            assert not unsafe.search(cleaned)
            assert clean(cleaned) == cleaned

    @PROPERTY
    @given(text=hostile_texts(max_length=5000))
    def test_one_line_of_a_clean_text_is_the_line(self, text: str) -> None:
        """Cleaning a multi-line text, then making it one line, is making it one line."""
        assert sanitize.clean_line(sanitize.clean_text(text)) == sanitize.clean_line(text)

    @PROPERTY
    @given(text=ORDINARY)
    def test_ordinary_text_comes_through_unchanged(self, text: str) -> None:
        """Printable text within its cap is left exactly as it is."""
        assert sanitize.line(text) == text
        assert sanitize.identity(text) == text
        assert sanitize.text(text) == text
        assert sanitize.text(f"{text}\n\t{text}") == f"{text}\n\t{text}"

    @pytest.mark.parametrize(
        ("raw", "line"),
        [
            ("a\x1b[31mred\x1b[0m b", "ared b"),
            ("\x1b[2J\x1b[1A\x1b[2Kfake", "fake"),
            ("x\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\y", "xclicky"),
            ("\x1b]0;window title\x07prompt", "prompt"),
            ("\x9b31mC1 CSI", "C1 CSI"),
            ("\x1bcreset", "reset"),
            ("\x1bP+q\x1b\\dcs", "dcs"),
            ("unterminated \x1b]0;title", "unterminated 0;title"),
            ("job-\udcff-name", "job-\ufffd-name"),
            ("pair \ud83d\ude00", "pair \U0001f600"),
            ("a\r\nb\tc\u2028d", "a b c d"),
            ("\u202eevil\u202c \u2066iso\u2069", "evil iso"),
            ("nul\x00 del\x7f nel\x85", "nul del nel"),
        ],
    )
    def test_escape_sequences_and_controls_go(self, raw: str, line: str) -> None:
        """Escape sequences go whole, other controls one by one, line breaks become spaces
        in a line; lone surrogates become U+FFFD and pairs their character.
        """
        assert sanitize.line(raw) == line

    def test_multi_line_text_keeps_line_feeds_and_tabs(self) -> None:
        """A multi-line text keeps ``\\n`` and ``\\t``; CRLF and U+2028 become ``\\n``."""
        assert sanitize.text("a\r\nb\r\tc\u2028d\x1b[1m") == "a\nb\tc\nd"

    def test_a_cut_says_how_much(self) -> None:
        """A cut text ends with a marker counting what was cut, within the cap."""
        cut = sanitize.text("x" * 5000)
        assert len(cut) == sanitize.TEXT_LIMIT
        match = MARKER.search(cut)
        assert match is not None
        assert cut.index("…") + int(match.group(1).replace(",", "")) == 5000

    def test_a_megabyte_is_cut_to_the_cap(self) -> None:
        """A megabyte of text is cut to the cap, the count of what was cut in it."""
        cut = sanitize.text("E" * 1_000_000)
        assert len(cut) <= sanitize.TEXT_LIMIT
        match = MARKER.search(cut)
        assert match is not None
        assert cut.index("…") + int(match.group(1).replace(",", "")) == 1_000_000

    def test_long_keys_stay_distinct(self) -> None:
        """Two long keys with the same start stay two: the cut carries a digest."""
        first = sanitize.identity("k" * 2000 + "1")
        second = sanitize.identity("k" * 2000 + "2")
        assert first != second
        assert len(first) == len(second) == sanitize.LINE_LIMIT
        assert MARKER.search(first)

    def test_fields_are_bounded_in_number_and_size(self) -> None:
        """Fields past the number or the total are cut, a last field saying how many."""
        many = sanitize.fields([(f"F{index}", "v" * 10) for index in range(500)])
        assert len(many) == sanitize.MAX_FIELDS
        assert many[-1] == (sanitize.CUT_NAME, "401 more fields cut (5,613 characters)")
        big = sanitize.fields({f"F{index}": "v" * 3000 for index in range(20)})
        assert sum(len(name) + len(value) for name, value in big) <= sanitize.FIELDS_LIMIT
        assert big[-1][0] == sanitize.CUT_NAME
        assert big[-1][1].startswith("14 more fields cut")
        assert MARKER.search(big[-2][1])
        assert sanitize.fields(big) == big
        assert sanitize.fields(many) == many

    def test_labels_are_bounded(self) -> None:
        """Labels past the number are cut, a last label saying how many."""
        labels = sanitize.labels({f"team{index}": "x" for index in range(80)})
        assert len(labels) == sanitize.MAX_LABELS
        assert labels[sanitize.CUT_NAME] == "31 more labels cut (217 characters)"
        assert sanitize.labels(labels) == labels

    def test_a_link_too_long_is_left_out(self) -> None:
        """A link longer than the cap is left out; a shorter one is cleaned."""
        assert sanitize.url("https://x.test/" + "a" * 5000) is None
        assert sanitize.url("https://x.test/\x1b[2Ja b") == "https://x.test/a b"

    def test_bytes_are_decoded(self) -> None:
        """Bytes (a plugin's field value) are read as UTF-8, U+FFFD for what is not."""
        assert sanitize.fields({b"name\xff": b"value \xfe"}) == (("name\ufffd", "value \ufffd"),)

    @PROPERTY
    @given(
        data=st.recursive(
            st.none() | st.integers() | hostile_texts(max_length=200),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(hostile_texts(max_length=40), inner, max_size=4)
            ),
            max_leaves=12,
        )
    )
    def test_json_always_encodes(self, data: Any) -> None:
        """``dumps`` and ``data`` make JSON that encodes to UTF-8 and reads back."""
        for value in (data, sanitize.data(data)):
            text = sanitize.dumps(value)
            text.encode("utf-8")
            json.loads(text)
        assert sanitize.data(sanitize.data(data)) == sanitize.data(data)


class TestAlert:
    """An alert is safe however it is built: every text attribute goes through a converter."""

    @PROPERTY
    @given(alert=strategies.hostile_alerts())
    def test_hostile_alert_is_safe_bounded_and_round_trips(self, alert: Alert) -> None:
        """Any hostile alert holds only safe text within its bound, and its dict form goes
        to JSON and back to an equal alert.
        """
        assert_safe_alert(alert)
        text = json.dumps(alert.to_dict(), ensure_ascii=False)
        assert Alert.from_dict(json.loads(text.encode("utf-8").decode("utf-8"))) == alert
        assert attrs.evolve(alert) == alert

    def test_megabyte_texts_make_a_small_alert(self) -> None:
        """An alert given a megabyte in every text holds tens of kilobytes."""
        text = megabyte_of("".join(HOSTILE_PIECES))
        alert = Alert(
            type="job_failed",
            key=text,
            headline=text,
            title=text,
            summary=text,
            explanation=text,
            fields=[(text, text)] * 200,
            job_class=text,
            supervision_id=text,
            service=text,
            labels={str(n): text for n in range(100)},
            details_url=text,
            runbook_url=text,
            occurred_at=NOW,
        )
        assert_safe_alert(alert)
        assert len(json.dumps(alert.to_dict(), ensure_ascii=False).encode("utf-8")) < 256_000

    def test_ordinary_alert_is_unchanged(self) -> None:
        """An ordinary alert keeps every text exactly."""
        values = {
            "type": "job_stuck",
            "key": "550e8400-e29b-41d4-a716-446655440000",
            "headline": "Job Stuck",
            "title": "Job Stuck: App\\Jobs\\ProcessLargeDataset",
            "summary": "A supervised job has been detected as stuck.",
            "explanation": "It may be:\n\t- deadlocked\n\t- waiting on I/O",
            "fields": (("Supervision ID", "550e8400"), ("Error", "Traceback:\n  line 1")),
            "job_class": "App\\Jobs\\ProcessLargeDataset",
            "labels": {"team": "data-platform"},
            "details_url": "https://app.example.com/chaperone/jobs/550e8400",
            "occurred_at": NOW,
        }
        alert = Alert(**values)
        for name, value in values.items():
            shown = dict(alert.labels) if name == "labels" else getattr(alert, name)
            assert shown == value


class TestOutbox:
    """An outbox entry of any alert is written to the store and read back whole."""

    @PROPERTY
    @given(alert=strategies.hostile_alerts(), detail=hostile_texts(max_length=2000))
    def test_any_alert_goes_through_the_outbox(
        self, store: Store, alert: Alert, detail: str
    ) -> None:
        """to_json never fails, the store keeps it, and from_json gives back the entry."""
        secrets = SecretBook()
        entry = OutboxEntry(
            id="entry-1",
            alert=alert,
            destination=Destination(channel="webhook", route="default"),
            created_at=1.0,
            attempts=1,
            last=Outcome.transient(detail),
        )
        store.set("outbox:entry:entry-1", entry.to_json(secrets))
        text = store.get("outbox:entry:entry-1")
        assert text is not None
        back = OutboxEntry.from_json("entry-1", text, secrets)
        assert back.alert == alert
        assert back.destination == entry.destination


class TestHistory:
    """The history keeps any alert, bounded, and reads it back."""

    @PROPERTY
    @given(alert=strategies.hostile_alerts(), detail=hostile_texts())
    def test_any_alert_is_recorded_and_read_back(
        self, store: Store, alert: Alert, detail: str
    ) -> None:
        """A record of any alert, with any delivery detail, is appended and read back,
        every text in it safe, the record a few tens of kilobytes at most.
        """
        clock = ManualClock(NOW)
        record_delivery(
            store,
            clock,
            alert=alert,
            channel="slack",
            route="default",
            status="failed",
            detail=detail,
            max_len=5,
            fallback_of="\x1b[2Jdiscord",
        )
        (record,) = read_history(store, 1)
        assert record["key"] == alert.key
        assert record["title"] == alert.title
        assert record["fields"] == dict(alert.fields)
        assert record["fallback_of"] == "discord"
        assert record["detail"] == sanitize.line(detail)
        assert not LINE_UNSAFE.search(record["detail"])
        assert len(json.dumps(record, ensure_ascii=False)) <= sanitize.ALERT_LIMIT

    def test_a_secret_is_masked_before_the_cut(self, sqlite_store: Store) -> None:
        """A secret quoted where the detail is cut is masked whole first: no piece of it
        is left in the record.
        """
        token = "Zq8xLw3vNp5rTb7yKd2mHc9f"  # noqa: S105 - a made-up webhook token
        secret = f"https://hooks.slack.com/services/T0000/B0000/{token}"
        MASKER.add(secret)
        detail = "x" * 920 + secret + " answered 404"
        record_delivery(
            sqlite_store,
            ManualClock(NOW),
            alert=Alert(type="t", key="k", headline="H", title="T", summary="", occurred_at=NOW),
            channel="slack",
            route="default",
            status="failed",
            detail=detail,
            max_len=5,
        )
        (record,) = read_history(sqlite_store, 1)
        assert token[:6] not in record["detail"]
        assert len(record["detail"]) <= sanitize.LINE_LIMIT


def job_completed(text: str) -> JobCompleted:
    """A failed job's completion with ``text`` as its id, class, error and incident key."""
    return JobCompleted(
        supervision_id=text,
        job_class=text,
        duration=timedelta(seconds=3),
        failed=True,
        error=text,
        resolves=(IncidentRef(type="job_timeout", key=text),),
        occurred_at=NOW,
    )


class TestEventQueue:
    """Events carry any text through the store's queue."""

    @PROPERTY
    @given(text=hostile_texts(max_length=20_000))
    def test_any_event_text_is_queued(self, store: Store, text: str) -> None:
        """An event holding any text encodes to JSON the store keeps; it decodes to the
        same event, lone surrogates made U+FFFD.
        """
        event = job_completed(text)
        store.set("events:one", encode_event(event))
        stored = store.get("events:one")
        assert stored is not None
        decoded = decode_event(stored)
        valid = sanitize.dumps(text)
        assert decoded == job_completed(json.loads(valid))


class TestJobRecord:
    """A job record with any name, error or metadata is stored and read back."""

    @PROPERTY
    @given(name=hostile_texts(), error=hostile_texts(), key=hostile_texts(max_length=80))
    def test_any_record_is_stored(self, store: Store, name: str, error: str, key: str) -> None:
        """The name is one safe line, the error safe text, the metadata's text too; the
        record's JSON is kept by the store and reads back equal.
        """
        record = JobRecord(
            supervision_id="job-1",
            name=name,
            started_at=1.0,
            error=error,
            metadata={key: [error, 3, {"nested": name}]},
        )
        assert not LINE_UNSAFE.search(record.name)
        assert record.error is not None
        assert not TEXT_UNSAFE.search(record.error)
        assert len(record.name) <= sanitize.LINE_LIMIT
        store.set("job:job-1", record.to_json())
        text = store.get("job:job-1")
        assert text is not None
        assert JobRecord.from_json(text) == record

    def test_ordinary_record_is_unchanged(self) -> None:
        """An ordinary name, error and metadata are kept exactly."""
        record = JobRecord(
            supervision_id="s",
            name="nightly-import",
            started_at=1.0,
            error="RuntimeError: boom\n  at line 3",
            metadata={"rows": 10, "file": "a.csv"},
        )
        assert (record.name, record.error) == ("nightly-import", "RuntimeError: boom\n  at line 3")
        assert record.metadata == {"rows": 10, "file": "a.csv"}


@pytest.fixture(scope="module")
def log_stream() -> Iterator[Callable[[str], io.StringIO]]:
    """Configures logging to a fresh stream in a format (each example calls it anew);
    structlog's configuration is restored after the module's tests.
    """
    saved = structlog.get_config()

    def configure(log_format: str) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(Settings(log_format=log_format, log_level="debug"), stream)
        return stream

    yield configure
    structlog.configure(**saved)


class TestLogChannel:
    """The console ``log`` channel writes one line per alert, with no escape sequence."""

    @PROPERTY
    @given(alert=strategies.hostile_alerts(max_length=20_000))
    @example(
        alert=Alert(
            type="job_failed",
            key="k",
            headline="Job Failed",
            title="evil\n\x1b[2J[FIRING] fake\u202e",
            summary="two\nlines\r\n",
            fields={"Error": "Traceback:\n  File x\n\x1b]8;;https://evil.example/\x1b\\x"},
            occurred_at=NOW,
        )
    )
    def test_one_line_per_alert(
        self, log_stream: Callable[[str], io.StringIO], alert: Alert
    ) -> None:
        """In console and JSON format alike, an alert is one line without a control
        character but the line end, a bidi override or a lone surrogate.
        """
        for log_format in ("console", "json"):
            stream = log_stream(log_format)
            channel = LogChannel()
            context = SendContext(http=offline_client(), clock=ManualClock(NOW), timeout=1.0)

            async def send(channel: LogChannel = channel, context: SendContext = context) -> None:
                await channel.send(alert, context)
                await context.http.aclose()

            asyncio.run(send())
            output = stream.getvalue()
            assert output.endswith("\n")
            assert output.count("\n") == 1, output[:400]
            assert not LINE_UNSAFE.search(output[:-1]), repr(output[:400])
            if log_format == "json":
                assert (
                    json.loads(output)["event"] == f"[{alert.status.value.upper()}] {alert.title}"
                )
