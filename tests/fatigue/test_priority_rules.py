r"""The built-in priority rules (``[alerting.priority]``): the seed's ``AlertPriority``
trait as configuration, applied by the pipeline before the filters, after any plugin.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chaperone
from chaperone import Alert, Chaperone, JobStuck, ManualClock, Priority, Settings
from chaperone.builtin.priority_rules import LEVELS, explain_priority
from chaperone.config import PrioritySettings, load_settings
from helpers.fatigue import RecordingChannel, runtime_with

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
SEED_RULES = PrioritySettings(
    critical_jobs=("App\\Jobs\\ChargeCustomer",),
    patterns={
        Priority.HIGH: ("*Payment*", "*Order*"),
        Priority.LOW: ("*Cleanup*", "*Archive*"),
    },
)
"""The seed's trait, as the issue's example config writes it."""


def alert(job_class: str | None = "App\\Jobs\\ImportFeed", **changes: Any) -> Alert:
    """A job-stuck alert for ``job_class``."""
    values: dict[str, Any] = {
        "type": "job_stuck",
        "key": "sup-1",
        "headline": "Job Stuck",
        "title": f"Job Stuck: {job_class}",
        "summary": "Stuck.",
        "occurred_at": AT,
        "job_class": job_class,
    }
    values.update(changes)
    return Alert(**values)


def seed_priority(job_class: str, critical_jobs: tuple[str, ...]) -> Priority:
    """The seed's ``AlertPriority::getAlertPriority``, line by line."""
    if job_class in critical_jobs:
        return Priority.CRITICAL
    if "Payment" in job_class or "Order" in job_class:
        return Priority.HIGH
    if "Cleanup" in job_class or "Archive" in job_class:
        return Priority.LOW
    return Priority.NORMAL


def reference_priority(job_class: str | None, rules: PrioritySettings) -> Priority | None:
    """Every level whose rules match, the most urgent of them (critical_jobs count as
    critical); None when nothing matches.
    """
    if job_class is None:
        return None

    def hit(patterns: tuple[str, ...]) -> bool:
        return any(p == job_class or fnmatch.fnmatchcase(job_class, p) for p in patterns)

    levels = {level for level in Priority if hit(rules.patterns.get(level, ()))}
    if hit(rules.critical_jobs):
        levels.add(Priority.CRITICAL)
    order = [Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]
    return min(levels, key=order.index) if levels else None


class Says:
    """A plugin that gives every alert one priority (or None)."""

    def __init__(self, priority: Priority | None) -> None:
        self.priority = priority

    @chaperone.hookimpl
    def chaperone_alert_priority(self, alert: Alert) -> Priority | None:
        return self.priority


def runtime(rules: PrioritySettings, *plugins: object) -> Chaperone:
    """A runtime with the built-ins, ``plugins``, channel ``pager`` and ``rules``."""
    settings = Settings(channels=("pager",), priority=rules, store_url="memory://")
    return runtime_with(settings, ManualClock(AT), *plugins)


# Small vocabularies, so that drawn patterns and class names meet often.
WORDS = ("Payment", "Order", "Cleanup", "Archive", "Import", "Charge", "Feed")
job_classes = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(
    lambda words: "App\\Jobs\\" + "".join(words)
)
patterns = st.one_of(
    st.sampled_from(WORDS).map(lambda word: f"*{word}*"),
    st.sampled_from(WORDS).map(lambda word: f"App\\Jobs\\{word}*"),
    job_classes,
    st.just("*"),
    st.just("App\\Jobs\\[CF]*"),
)
rule_sets = st.builds(
    PrioritySettings,
    critical_jobs=st.lists(patterns, max_size=3).map(tuple),
    patterns=st.dictionaries(
        st.sampled_from(Priority), st.lists(patterns, max_size=3).map(tuple), max_size=4
    ),
)


class TestSeedRules:
    """The issue's example rules give the seed trait's priorities."""

    @pytest.mark.parametrize(
        ("job_class", "expected", "reason"),
        [
            (
                "App\\Jobs\\ChargeCustomer",
                Priority.CRITICAL,
                "job class 'App\\Jobs\\ChargeCustomer' matches critical_jobs entry "
                "'App\\Jobs\\ChargeCustomer'",
            ),
            (
                "App\\Jobs\\PaymentSync",
                Priority.HIGH,
                "job class 'App\\Jobs\\PaymentSync' matches high pattern '*Payment*'",
            ),
            (
                "App\\Jobs\\ShipOrder",
                Priority.HIGH,
                "job class 'App\\Jobs\\ShipOrder' matches high pattern '*Order*'",
            ),
            (
                "App\\Jobs\\ArchiveLogs",
                Priority.LOW,
                "job class 'App\\Jobs\\ArchiveLogs' matches low pattern '*Archive*'",
            ),
        ],
    )
    def test_examples(self, job_class: str, expected: Priority, reason: str) -> None:
        """Each of the seed's cases gets its priority, and the reason names the rule."""
        decision = explain_priority(alert(job_class), SEED_RULES)
        assert decision.priority is expected
        assert decision.reason == reason

    def test_first_level_wins(self) -> None:
        """A class matching a high and a low pattern is high: levels are tried in order."""
        decision = explain_priority(alert("App\\Jobs\\PaymentCleanup"), SEED_RULES)
        assert decision.priority is Priority.HIGH

    def test_critical_jobs_come_before_patterns(self) -> None:
        """A critical job whose name also matches a low pattern is critical."""
        rules = PrioritySettings(
            critical_jobs=("App\\Jobs\\ArchiveLedger",),
            patterns={Priority.LOW: ("*Archive*",)},
        )
        assert explain_priority(alert("App\\Jobs\\ArchiveLedger"), rules).priority is (
            Priority.CRITICAL
        )

    def test_critical_jobs_may_be_globs(self) -> None:
        """A critical_jobs entry with a wildcard matches like a pattern."""
        rules = PrioritySettings(critical_jobs=("App\\Jobs\\Billing\\*",))
        assert explain_priority(alert("App\\Jobs\\Billing\\Run"), rules).priority is (
            Priority.CRITICAL
        )

    def test_patterns_are_case_sensitive(self) -> None:
        """``*Payment*`` does not match ``paymentsync``, as the route matcher."""
        decision = explain_priority(alert("app\\jobs\\paymentsync"), SEED_RULES)
        assert decision.priority is None

    def test_no_match_keeps_the_built_priority(self) -> None:
        """A class no rule matches gets None, and the reason says it stays as built."""
        decision = explain_priority(alert("App\\Jobs\\ImportFeed", priority="high"), SEED_RULES)
        assert decision.priority is None
        assert decision.reason.endswith("matches no priority rule: it stays high")

    def test_no_job_class_is_left_alone(self) -> None:
        """A circuit-breaker alert has no job class: no rule applies, even ``*``."""
        rules = PrioritySettings(patterns={Priority.LOW: ("*",)})
        decision = explain_priority(alert(None, service="payment-gateway"), rules)
        assert decision.priority is None
        assert decision.reason.startswith("no job class")

    def test_no_rules(self) -> None:
        """With no rules configured, nothing changes."""
        assert explain_priority(alert(), PrioritySettings()).priority is None

    @given(
        middle=st.text(max_size=20),
        word=st.sampled_from(("", "Payment", "Order", "Cleanup", "Archive")),
        critical=st.booleans(),
    )
    @settings(max_examples=200)
    def test_equals_the_seed_trait(self, middle: str, word: str, critical: bool) -> None:
        """For any job class, the example rules agree with the seed's trait (whose
        ``normal`` is our "keep the built priority").
        """
        # The job class as the alert holds it (control characters in ``middle`` removed).
        job_class = alert(f"App\\Jobs\\{middle}{word}{middle}").job_class
        assert job_class is not None
        critical_jobs = (job_class,) if critical else ("App\\Jobs\\ChargeCustomer",)
        rules = PrioritySettings(critical_jobs=critical_jobs, patterns=SEED_RULES.patterns)
        expected = seed_priority(job_class, critical_jobs)
        got = explain_priority(alert(job_class), rules).priority
        assert (got or Priority.NORMAL) is expected


class TestAgainstReference:
    """Any rules and any job class: the most urgent matching level, critical_jobs first."""

    @given(rules=rule_sets, job_class=st.none() | job_classes, built=st.sampled_from(Priority))
    @settings(max_examples=300)
    def test_matches_reference(
        self, rules: PrioritySettings, job_class: str | None, built: Priority
    ) -> None:
        """The rules' answer equals the reference, whatever the built priority."""
        decision = explain_priority(alert(job_class, priority=built), rules)
        assert decision.priority is reference_priority(job_class, rules)

    @given(rules=rule_sets, job_class=job_classes)
    @settings(max_examples=100)
    def test_reason_names_a_matching_pattern(self, rules: PrioritySettings, job_class: str) -> None:
        """When a level is given, the reason quotes a pattern of that level that matches."""
        decision = explain_priority(alert(job_class), rules)
        if decision.priority is None:
            assert "matches no priority rule" in decision.reason
            return
        pattern = decision.reason.rsplit(" ", 1)[-1].strip("'")
        assert fnmatch.fnmatchcase(job_class, pattern) or pattern == job_class
        pool: Mapping[Priority, tuple[str, ...]] = {
            **rules.patterns,
            Priority.CRITICAL: (
                *rules.critical_jobs,
                *rules.patterns.get(Priority.CRITICAL, ()),
            ),
        }
        assert pattern in pool[decision.priority]

    def test_levels_are_in_order(self) -> None:
        """The levels are tried most urgent first."""
        assert LEVELS == (Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW)


class TestInThePipeline:
    """The pipeline gives an alert the rules' priority; a plugin's answer comes first."""

    def event(self, job_class: str) -> JobStuck:
        """A stuck job of ``job_class``."""
        return JobStuck(
            supervision_id="sup-1", job_class=job_class, stuck_duration=timedelta(minutes=5)
        )

    def test_delivered_alert_carries_the_rules_priority(self) -> None:
        """A stuck PaymentSync is delivered with priority high."""
        recorder = RecordingChannel("pager")
        with runtime(SEED_RULES, recorder) as rt:
            report = rt.dispatch(self.event("App\\Jobs\\PaymentSync"))
        assert report.alerts[0].delivered
        assert [sent.priority for sent in recorder.sent] == [Priority.HIGH]

    def test_unmatched_alert_keeps_normal(self) -> None:
        """A stuck job no rule names goes out normal."""
        recorder = RecordingChannel("pager")
        with runtime(SEED_RULES, recorder) as rt:
            rt.dispatch(self.event("App\\Jobs\\ImportFeed"))
        assert [sent.priority for sent in recorder.sent] == [Priority.NORMAL]

    def test_a_plugin_answers_before_the_rules(self) -> None:
        """A plugin's priority wins over the built-in rules (which run last)."""
        recorder = RecordingChannel("pager")
        with runtime(SEED_RULES, recorder, Says(Priority.LOW)) as rt:
            rt.dispatch(self.event("App\\Jobs\\PaymentSync"))
        assert [sent.priority for sent in recorder.sent] == [Priority.LOW]

    def test_a_plugin_without_opinion_leaves_it_to_the_rules(self) -> None:
        """A plugin answering None lets the rules decide."""
        recorder = RecordingChannel("pager")
        with runtime(SEED_RULES, recorder, Says(None)) as rt:
            rt.dispatch(self.event("App\\Jobs\\ArchiveLogs"))
        assert [sent.priority for sent in recorder.sent] == [Priority.LOW]

    def test_rules_from_the_toml_file(self, tmp_path: Any) -> None:
        """The issue's ``[alerting.priority]`` table, loaded from a file, drives the rules."""
        (tmp_path / "chaperone.toml").write_text(
            "[alerting.priority]\n"
            'critical_jobs = ["App\\\\Jobs\\\\ChargeCustomer"]\n'
            'high = ["*Payment*", "*Order*"]\n'
            'low = ["*Cleanup*", "*Archive*"]\n'
        )
        rules = load_settings({}, tmp_path).priority
        for job_class, expected in [
            ("App\\Jobs\\ChargeCustomer", Priority.CRITICAL),
            ("App\\Jobs\\OrderShipped", Priority.HIGH),
            ("App\\Jobs\\CleanupTemp", Priority.LOW),
            ("App\\Jobs\\Import", None),
        ]:
            assert explain_priority(alert(job_class), rules).priority is expected
