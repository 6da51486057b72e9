"""The Discord message an alert becomes: the seed's embed for each built-in alert type,
resolutions in green, and any alert at all (oversized, non-ASCII, with dozens of fields)
within every limit Discord documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from chaperone_discord import render
from chaperone_discord._limits import limit_problems
from chaperone_discord._render import (
    BLUE,
    FOOTER_TEXT,
    GREEN,
    ORANGE,
    RED,
    escape_markdown,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    Chaperone,
    CircuitBreakerOpened,
    Event,
    JobRecovered,
    JobStuck,
    JobTimeout,
    ManualClock,
    PluginHost,
    ResourceViolationDetected,
    Settings,
    Severity,
    ViolationType,
)
from chaperone.channels.text import fit, utf16_length
from chaperone.store import MemoryStore
from chaperone.testing import strategies

APP_URL = "https://app.example.test"
SID = "550e8400-e29b-41d4-a716-446655440000"
NOW = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
SEVERITY_COLORS = {
    Severity.CRITICAL: RED,
    Severity.ERROR: RED,
    Severity.WARNING: ORANGE,
    Severity.INFO: BLUE,
}
PROPERTY = settings(
    deadline=None,
    max_examples=100,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def runtime() -> Iterator[Chaperone]:
    """A runtime with the built-in plugins only and an application URL."""
    clock = ManualClock(NOW)
    with Chaperone(
        Settings(app_url=APP_URL),
        clock=clock,
        store=MemoryStore(clock),
        plugins=PluginHost(entry_points=False),
    ) as runtime:
        yield runtime


def built(runtime: Chaperone, event: Event) -> Alert:
    """The one alert the built-in ``chaperone_alerts`` hook builds for ``event``."""
    alerts = runtime.plugins.hook.chaperone_alerts(event=event, runtime=runtime.runtime)
    assert alerts is not None
    (alert,) = alerts
    assert isinstance(alert, Alert)
    return alert


def only_embed(payload: dict[str, Any]) -> dict[str, Any]:
    """The single embed of ``payload``."""
    (embed,) = payload["embeds"]
    assert isinstance(embed, dict)
    return embed


def all_fields(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field of every embed, in order."""
    return [field for embed in payload["embeds"] for field in embed.get("fields", [])]


def plain_total(payload: dict[str, Any]) -> int:
    """The characters the 6,000 limit counts, counted naively in code points."""
    total = 0
    for embed in payload["embeds"]:
        total += len(embed.get("title", "")) + len(embed.get("description", ""))
        total += len(embed.get("footer", {}).get("text", ""))
        total += len(embed.get("author", {}).get("name", ""))
        total += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    return total


def huge_alert() -> Alert:
    """Every text far over its limit, in characters outside the BMP, and 300 fields."""
    fraktur = "".join(chr(0x1D51E + offset) for offset in range(7))  # Fraktur, past the BMP
    text = f"{fraktur} 🚀 " * 6000
    return Alert(
        type="job_stuck",
        key="k",
        headline=text,
        title=text,
        summary=text,
        explanation=text,
        fields=[(f"{text[:400]} {index}", text) for index in range(300)],
        details_url="https://example.test/" + "x" * 5000,
        runbook_url="https://example.test/runbook",
        occurred_at=NOW,
    )


class TestSeedFormat:
    """Each built-in alert type renders as the seed's Discord embed."""

    def test_job_timeout_is_the_seed_example(self, runtime: Chaperone) -> None:
        """A job timeout is the seed's example: warning emoji and the job class in the title,
        red, the supervision id on a line of its own, the durations inline, the footer and
        the ISO timestamp.
        """
        alert = built(
            runtime,
            JobTimeout(
                supervision_id=SID,
                job_class="App\\Jobs\\GenerateMonthlyReport",
                timeout=timedelta(seconds=300),
                actual_duration=timedelta(seconds=350),
                occurred_at=NOW,
            ),
        )
        assert render(alert) == {
            "embeds": [
                {
                    "title": "⚠️ Job Timeout: App\\Jobs\\GenerateMonthlyReport",
                    "description": "A supervised job has exceeded its timeout limit.\n\n"
                    "The job may be processing more data than expected, waiting on a slow "
                    "dependency, or blocked on a lock.\n\n"
                    f"[View Job Details]({APP_URL}/chaperone/jobs/{SID})",
                    "color": 15158332,
                    "fields": [
                        {"name": "Supervision ID", "value": SID, "inline": False},
                        {
                            "name": "Job Class",
                            "value": "App\\Jobs\\GenerateMonthlyReport",
                            "inline": True,
                        },
                        {"name": "Timeout Limit", "value": "300s", "inline": True},
                        {"name": "Actual Duration", "value": "350s", "inline": True},
                        {"name": "Exceeded By", "value": "50s", "inline": True},
                    ],
                    "footer": {"text": "Chaperone Job Supervision"},
                    "timestamp": "2024-01-15T10:30:00+00:00",
                }
            ],
            "allowed_mentions": {"parse": []},
        }

    def test_job_stuck(self, runtime: Chaperone) -> None:
        """A stuck job: red, warning emoji, the seed's four fields and the details link."""
        alert = built(
            runtime,
            JobStuck(
                supervision_id=SID,
                job_class="App\\Jobs\\ProcessLargeDataset",
                stuck_duration=timedelta(minutes=30),
                last_heartbeat=NOW - timedelta(minutes=30),
                occurred_at=NOW,
            ),
        )
        embed = only_embed(render(alert))
        assert embed["title"] == "⚠️ Job Stuck: App\\Jobs\\ProcessLargeDataset"
        assert embed["color"] == RED
        assert embed["description"].startswith(
            "A supervised job has been detected as stuck and may require intervention.\n\n"
            "This job may be in an infinite loop, deadlocked, or otherwise unable to complete."
        )
        assert embed["description"].endswith(f"[View Job Details]({APP_URL}/chaperone/jobs/{SID})")
        assert [(f["name"], f["value"]) for f in embed["fields"]] == [
            ("Supervision ID", SID),
            ("Job Class", "App\\Jobs\\ProcessLargeDataset"),
            ("Stuck Duration", "30 minutes"),
            ("Last Heartbeat", "2024-01-15 10:00:00 UTC"),
        ]
        assert [f["inline"] for f in embed["fields"]] == [False, True, True, True]
        assert embed["footer"] == {"text": FOOTER_TEXT}

    def test_circuit_breaker(self, runtime: Chaperone) -> None:
        """An opened circuit breaker is critical: the siren, red, the seed's fields."""
        alert = built(
            runtime,
            CircuitBreakerOpened(
                service="payment-gateway",
                failure_count=10,
                opened_at=NOW,
                retry_at=NOW + timedelta(seconds=60),
                occurred_at=NOW,
            ),
        )
        embed = only_embed(render(alert))
        assert embed["title"] == "🚨 Circuit Breaker Opened: payment-gateway"
        assert embed["color"] == RED
        assert [(f["name"], f["value"], f["inline"]) for f in embed["fields"]] == [
            ("Service", "payment-gateway", True),
            ("Failure Count", "10", True),
            ("Opened At", "2024-01-15 10:30:00 UTC", True),
            ("Status", "Service Unavailable", True),
            ("Next Trial At", "2024-01-15 10:31:00 UTC", True),
        ]
        assert "Link" not in embed["description"]

    def test_resource_violation(self, runtime: Chaperone) -> None:
        """A resource violation is a warning: orange, the orange diamond, its fields."""
        alert = built(
            runtime,
            ResourceViolationDetected(
                supervision_id=SID,
                job_class="App\\Jobs\\ImportCustomerFeed",
                violation_type=ViolationType.MEMORY,
                limit=512,
                actual=768,
                occurred_at=NOW,
            ),
        )
        embed = only_embed(render(alert))
        assert embed["title"] == "🔶 Resource Violation: App\\Jobs\\ImportCustomerFeed"
        assert embed["color"] == ORANGE
        assert [(f["name"], f["value"]) for f in embed["fields"]] == [
            ("Supervision ID", SID),
            ("Job Class", "App\\Jobs\\ImportCustomerFeed"),
            ("Violation Type", "memory"),
            ("Limit", "512 MB"),
            ("Actual", "768 MB"),
            ("Exceeded By", "256 MB"),
        ]

    def test_recovery_is_a_green_resolution(self, runtime: Chaperone) -> None:
        """A recovered job renders as a resolution: a check mark and green."""
        alert = built(
            runtime,
            JobRecovered(
                supervision_id=SID,
                job_class="App\\Jobs\\ProcessLargeDataset",
                recovered_from="job_stuck",
                reason="heartbeats resumed",
                occurred_at=NOW,
            ),
        )
        embed = only_embed(render(alert))
        assert embed["title"] == "✅ Job Recovered: App\\Jobs\\ProcessLargeDataset"
        assert embed["color"] == GREEN
        assert embed["description"].startswith("The job recovered: heartbeats resumed.")

    def test_username_and_avatar(self) -> None:
        """A configured username and avatar go on the message."""
        alert = Alert(type="t", key="k", headline="H", title="T", summary="s", occurred_at=NOW)
        payload = render(alert, username="Chaperone", avatar_url="https://example.test/a.png")
        assert payload["username"] == "Chaperone"
        assert payload["avatar_url"] == "https://example.test/a.png"


class TestColorsAndTitles:
    """The colour and emoji follow severity and status."""

    @pytest.mark.parametrize(
        ("severity", "color", "emoji"),
        [
            (Severity.CRITICAL, RED, "🚨"),
            (Severity.ERROR, RED, "⚠️"),
            (Severity.WARNING, ORANGE, "🔶"),
            (Severity.INFO, BLUE, "\N{INFORMATION SOURCE}\N{VARIATION SELECTOR-16}"),
        ],
    )
    def test_firing_alerts_by_severity(self, severity: Severity, color: int, emoji: str) -> None:
        """A firing alert's colour and emoji say its severity; the title follows."""
        alert = Alert(
            type="job_stuck", key="k", headline="H", title="Job Stuck: X", summary="s",
            severity=severity, occurred_at=NOW,
        )  # fmt: skip
        embed = only_embed(render(alert))
        assert embed["color"] == color
        assert embed["title"] == f"{emoji} Job Stuck: X"

    def test_title_is_one_line(self) -> None:
        """Line breaks and control characters in a title become one clean line."""
        alert = Alert(
            type="t", key="k", headline="H", title="Job\nStuck:\r\n\x00X\t", summary="s",
            occurred_at=NOW,
        )  # fmt: skip
        assert only_embed(render(alert))["title"] == "⚠️ Job Stuck: X"

    def test_blank_title_falls_back_to_the_headline(self) -> None:
        """A title of whitespace only is replaced by the headline."""
        alert = Alert(
            type="t", key="k", headline="Job Stuck", title=" \n ", summary="s", occurred_at=NOW
        )
        assert only_embed(render(alert))["title"] == "⚠️ Job Stuck"


class TestDescription:
    """Summary, explanation and links make the description."""

    def test_links_are_markdown_and_safe(self) -> None:
        """Details and runbook are markdown links; parentheses and spaces in a URL are
        escaped so the link stays whole.
        """
        alert = Alert(
            type="t", key="k", headline="H", title="T", summary="Summary.",
            explanation="Why.", details_url="https://x.test/a (b)",
            runbook_url="https://x.test/run", occurred_at=NOW,
        )  # fmt: skip
        assert only_embed(render(alert))["description"] == (
            "Summary.\n\nWhy.\n\n[View Job Details](https://x.test/a%20%28b%29)\n"
            "[Runbook](https://x.test/run)"
        )

    def test_overlong_link_is_left_out_not_broken(self) -> None:
        """A link too long to show whole is left out; the other one stays."""
        alert = attrs.evolve(huge_alert(), summary="S", explanation="")
        description = only_embed(render(alert))["description"]
        assert description == "S\n\n[Runbook](https://example.test/runbook)"

    def test_long_summary_keeps_the_links(self) -> None:
        """An oversized summary is cut with an ellipsis and the links are kept whole."""
        alert = Alert(
            type="t", key="k", headline="H", title="T", summary="word " * 5000,
            explanation="because " * 2000, runbook_url="https://x.test/run", occurred_at=NOW,
        )  # fmt: skip
        description = only_embed(render(alert))["description"]
        assert description.endswith("…\n\n[Runbook](https://x.test/run)")
        assert description.startswith("word word")
        assert utf16_length(description) <= 4096

    def test_no_description_when_nothing_to_say(self) -> None:
        """An alert with no summary, explanation or link has no description key (Discord
        would reject an empty one).
        """
        alert = Alert(type="t", key="k", headline="H", title="T", summary=" ", occurred_at=NOW)
        assert "description" not in only_embed(render(alert))


class TestFields:
    """Alert fields become embed fields, never blank, split or counted when too many."""

    def test_blank_names_and_values_get_placeholders(self) -> None:
        """Discord rejects empty field names and values: they get placeholders."""
        alert = Alert(
            type="t", key="k", headline="H", title="T", summary="s",
            fields=[("", "value"), ("name", "  "), ("\x00", "\n")], occurred_at=NOW,
        )  # fmt: skip
        fields = only_embed(render(alert))["fields"]
        assert [(f["name"], f["value"]) for f in fields] == [
            ("\u200b", "value"),
            ("name", "—"),
            ("\u200b", "—"),
        ]

    def test_more_than_25_fields_go_on_in_further_embeds(self) -> None:
        """60 short fields fit in the 6,000 characters: all are shown, 25 per embed, in
        order, and the footer and timestamp close the last embed.
        """
        alert = Alert(
            type="t", key="k", headline="H", title="T", summary="s",
            fields=[(f"F{index}", f"v{index}") for index in range(60)], occurred_at=NOW,
        )  # fmt: skip
        payload = render(alert)
        embeds = payload["embeds"]
        assert [len(embed["fields"]) for embed in embeds] == [25, 25, 10]
        assert [f["name"] for f in all_fields(payload)] == [f"F{index}" for index in range(60)]
        assert [("title" in embed, "footer" in embed) for embed in embeds] == [
            (True, False),
            (False, False),
            (False, True),
        ]
        assert embeds[-1]["timestamp"] == "2024-01-15T10:30:00+00:00"
        assert {embed["color"] for embed in embeds} == {RED}

    def test_fields_past_the_total_are_counted(self) -> None:
        """Fields past the 6,000 characters are left out and counted in a last field; the
        one that half fits is cut.
        """
        alert = Alert(
            type="t", key="k", headline="H", title="T", summary="s",
            fields=[(f"F{index}", "x" * 1000) for index in range(10)], occurred_at=NOW,
        )  # fmt: skip
        fields = all_fields(render(alert))
        assert [f["name"] for f in fields] == ["F0", "F1", "F2", "F3", "F4", "F5", "…"]
        assert fields[5]["value"].endswith("…")
        assert fields[-1]["value"] == "4 more fields not shown"

    def test_oversized_alert_fits(self) -> None:
        """An alert over every limit, in astral characters, fits every limit."""
        payload = render(huge_alert())
        assert limit_problems(payload) == []
        fields = all_fields(payload)
        assert fields[-1]["value"].endswith("more fields not shown")
        assert payload["embeds"][0]["title"].endswith("…")


class TestAnyAlert:
    """Any alert renders within every documented limit."""

    @PROPERTY
    @given(alert=strategies.alerts())
    @example(alert=huge_alert())
    def test_within_every_limit(self, alert: Alert) -> None:
        """No limit is broken: lengths, counts, blank fields, the 6,000 total (counted in
        UTF-16 units and in code points).
        """
        payload = render(alert, username="Chaperone")
        assert limit_problems(payload) == []
        assert plain_total(payload) <= 6000
        assert 1 <= len(payload["embeds"]) <= 10
        assert all(len(embed.get("fields", [])) <= 25 for embed in payload["embeds"])
        json.dumps(payload, ensure_ascii=False).encode()  # valid Unicode on the wire

    @settings(PROPERTY, max_examples=50)
    @given(alert=strategies.alerts())
    def test_colour_footer_timestamp_and_mentions(self, alert: Alert) -> None:
        """Every embed has the alert's colour (green with a check mark once resolved); the
        last carries the footer and the instant the alert occurred; nobody is pinged.
        """
        payload = render(alert)
        colors = {embed["color"] for embed in payload["embeds"]}
        if alert.is_resolved:
            assert colors == {GREEN}
            assert payload["embeds"][0]["title"].startswith("✅ ")
        else:
            assert colors == {SEVERITY_COLORS[alert.severity]}
        last = payload["embeds"][-1]
        assert last["footer"] == {"text": FOOTER_TEXT}
        assert datetime.fromisoformat(last["timestamp"]) == alert.occurred_at
        assert payload["allowed_mentions"] == {"parse": []}

    @settings(PROPERTY, max_examples=40)
    @given(
        alert=strategies.alerts(),
        fields=st.lists(
            st.tuples(
                st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1),
                st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1),
            ),
            max_size=40,
        ),
    )
    def test_fields_that_fit_are_all_shown_in_order(
        self, alert: Alert, fields: list[tuple[str, str]]
    ) -> None:
        """Short plain fields are shown unchanged, in order, none left out."""
        alert = attrs.evolve(alert, fields=fields, title="T", summary="s", explanation="")
        shown = [(f["name"], f["value"]) for f in all_fields(render(alert))]
        assert shown == fields


class TestFit:
    """``fit`` cuts text to a length in UTF-16 units."""

    @settings(deadline=None)
    @given(text=st.text(), limit=st.integers(min_value=1, max_value=300))
    def test_fits_and_keeps_the_start(self, text: str, limit: int) -> None:
        """The result fits, is the text itself when it fitted, else a prefix and '…'."""
        result = fit(text, limit, measure=utf16_length)
        assert utf16_length(result) <= limit
        if utf16_length(text) <= limit:
            assert result == text
        else:
            assert result.endswith("…")
            assert text.startswith(result[:-1])

    def test_never_splits_a_surrogate_pair(self) -> None:
        """An astral character that would be cut in half is dropped whole."""
        assert fit("a🚀🚀", 4, measure=utf16_length) == "a🚀…"
        assert fit("a🚀🚀", 3, measure=utf16_length) == "a…"


class TestLimitCheck:
    """The limit check used above catches each kind of violation (so it can fail)."""

    @pytest.mark.parametrize(
        ("payload", "problem"),
        [
            ({"embeds": [{"title": "x" * 257}]}, "embeds[0].title is 257 long"),
            ({"embeds": [{"title": "🚀" * 129}]}, "embeds[0].title is 258 long"),
            ({"embeds": [{"description": "x" * 4097}]}, "description is 4097 long"),
            (
                {"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
                "has 26 fields",
            ),
            ({"embeds": [{"fields": [{"name": " ", "value": "v"}]}]}, "blank name or value"),
            ({"embeds": [{"title": "t"}] * 11}, "11 embeds"),
            ({"embeds": [{"description": "x" * 4000}] * 2}, "8000 characters, over 6000"),
            ({"embeds": [{"title": "t", "color": -1}]}, "color"),
            ({"embeds": [{"color": 1}]}, "embeds[0] is empty"),
            ({"username": "u" * 81, "content": "c"}, "username is 81 long"),
            ({}, "neither content nor embeds"),
        ],
    )
    def test_catches(self, payload: dict[str, Any], problem: str) -> None:
        """Each broken limit is reported."""
        assert any(problem in text for text in limit_problems(payload)), limit_problems(payload)


_MARKUP = frozenset("*_~`|<[")
_OUR_LINK = re.compile(r"\[(View Job Details|Runbook)\]\(")


def unescaped_markup(text: str) -> list[str]:
    """The markdown of ``text`` that Discord would read as markup, not escaped by a
    backslash: emphasis, code, spoilers, mentions, and the bracket that opens a link.
    """
    found = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char in _MARKUP:
            found.append(char)
        index += 1
    return found


def job_texts(payload: dict[str, Any]) -> Iterator[str]:
    """Every text of ``payload`` that comes from the alert: titles, the description but
    for its link lines, field names and values but for the "more fields" note.
    """
    for embed in payload["embeds"]:
        if "title" in embed:
            yield embed["title"]
        for line in embed.get("description", "").split("\n"):
            if not _OUR_LINK.match(line):
                yield line
        for field in embed.get("fields", []):
            if field["name"] != "…":
                yield field["name"]
                yield field["value"]


class TestHostileText:
    """Text from a job is shown as written: never markup, never a ping, never an error."""

    @PROPERTY
    @given(alert=strategies.hostile_alerts())
    def test_any_hostile_alert_fits_and_shows_no_markup(self, alert: Alert) -> None:
        """Any hostile alert renders within every limit, as valid Unicode, with every
        markdown character from the alert escaped and mentions disabled.
        """
        payload = render(alert, username="Chaperone")
        assert limit_problems(payload) == []
        json.dumps(payload, ensure_ascii=False).encode()
        for text in job_texts(payload):
            assert unescaped_markup(text) == [], text
        assert payload["allowed_mentions"] == {"parse": []}

    def test_a_link_in_an_error_is_no_link(self) -> None:
        """``[text](url)`` in an error and a title shows as written, not as a link."""
        link = "[the docs](https://evil.example/)"
        alert = Alert(
            type="job_failed",
            key="k",
            headline="Job Failed",
            title=f"Job Failed: {link}",
            summary=f"See {link}.",
            fields={"Error": f"RuntimeError: see {link}"},
            occurred_at=NOW,
        )
        embed = only_embed(render(alert))
        escaped = "\\[the docs](https://evil.example/)"
        assert embed["title"].endswith(f"Job Failed: {escaped}")
        assert embed["description"] == f"See {escaped}."
        assert embed["fields"] == [
            {"name": "Error", "value": f"RuntimeError: see {escaped}", "inline": False}
        ]

    def test_mentions_and_formatting_stay_text(self) -> None:
        """Mentions ping nobody; emphasis, code, spoilers, quotes and headers stay text."""
        value = "@everyone <@123> **bold** `code` ||spoiler||\n> quote\n# header"
        alert = Alert(
            type="t",
            key="k",
            headline="H",
            title="T",
            summary="s",
            fields={"Error": value},
            occurred_at=NOW,
        )
        payload = render(alert)
        assert payload["allowed_mentions"] == {"parse": []}
        assert only_embed(payload)["fields"][0]["value"] == (
            "@everyone \\<@123> \\*\\*bold\\*\\* \\`code\\` \\|\\|spoiler\\|\\|\n"
            "\\> quote\n\\# header"
        )

    def test_a_lone_surrogate_is_accepted(self) -> None:
        """Lone surrogates in every text, even past the alert's own cleaning, render to
        a message within Discord's limits that encodes to UTF-8.
        """
        alert = strategies.alert_with_raw_surrogates(NOW)
        payload = render(alert)
        assert limit_problems(payload) == []
        encoded = json.dumps(payload, ensure_ascii=False).encode()
        assert "\ufffd".encode() in encoded

    def test_a_class_name_keeps_its_backslashes_single(self) -> None:
        """A backslash before a letter is no escape: ``App\\Jobs\\X`` is sent as it is."""
        assert escape_markdown("App\\Jobs\\X") == "App\\Jobs\\X"
        assert escape_markdown("C:\\dir\\_x\\") == "C:\\dir\\\\\\_x\\\\"

    def test_length_and_fit_take_any_text(self) -> None:
        """Lengths and cuts never raise, lone surrogates included."""
        assert utf16_length("\udcff") == 1
        assert utf16_length("a\ud83d\ude00") == 3
        assert fit("\udcff" * 10, 5, measure=utf16_length) == "\udcff" * 4 + "…"
