"""AlertMatcher: field globs ANDed across fields, ORed within one, labels by name."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import Alert, Priority, Severity
from chaperone._matching import ALERT_FIELDS, AlertMatcher, field_value, parse_match
from chaperone.testing import strategies

AT = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def alert(**overrides: object) -> Alert:
    """A job-stuck alert with ``overrides`` applied."""
    base = Alert(
        type="job_stuck",
        key="sid-1",
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\ImportFeed",
        summary="stuck",
        occurred_at=AT,
        job_class="App\\Jobs\\ImportFeed",
        labels={"team": "data"},
    )
    return attrs.evolve(base, **overrides)


def reference(matcher: AlertMatcher, drawn: Alert) -> bool:
    """What a matcher means, written the slow and obvious way."""
    for name, globs in matcher.patterns:
        value = getattr(drawn, name) if name in ALERT_FIELDS else drawn.labels.get(name)
        if value is None:
            return False
        if not any(fnmatch.fnmatchcase(str(value), glob) for glob in globs):
            return False
    return True


class TestMatching:
    @pytest.mark.parametrize(
        ("match", "expected"),
        [
            ({}, True),
            ({"job_class": "App\\Jobs\\*"}, True),
            ({"job_class": "app\\jobs\\*"}, False),
            ({"job_class": ["Other", "*Import*"]}, True),
            ({"job_class": "*Import*", "severity": "critical"}, False),
            ({"severity": ["error", "critical"]}, True),
            ({"team": "data"}, True),
            ({"team": "web"}, False),
            ({"service": "*"}, False),
            ({"priority": "normal", "type": "job_*"}, True),
        ],
    )
    def test_examples(self, match: dict[str, object], expected: bool) -> None:
        """Globs are case-sensitive, ORed within a field, ANDed across fields; an absent
        field (a job alert has no service) matches nothing.
        """
        assert parse_match(match).matches(alert()) is expected

    def test_backslashes_are_literal(self) -> None:
        """A PHP-style class name's backslashes are plain characters, not escapes."""
        matcher = parse_match(["job_class=App\\Jobs\\*"])
        assert matcher.matches(alert())
        assert not matcher.matches(alert(job_class="AppXJobsXImportFeed"))

    @given(
        drawn=strategies.alerts(),
        fields=st.dictionaries(
            st.sampled_from([*ALERT_FIELDS, "team", "env"]),
            st.lists(
                st.sampled_from(["*", "job_*", "*Jobs*", "critical", "error", "high", "?*x"]),
                min_size=1,
                max_size=3,
            ),
            max_size=3,
        ),
    )
    def test_agrees_with_the_reference(self, drawn: Alert, fields: dict[str, list[str]]) -> None:
        """For any alert and any matcher, matches() is the obvious definition."""
        matcher = parse_match(fields)
        assert matcher.matches(drawn) is reference(matcher, drawn)
        assert len(matcher.explain(drawn)) == len(fields)


class TestParsing:
    def test_repeated_cli_keys_add_globs(self) -> None:
        """`--match job_class=A --match job_class=B` means A or B."""
        matcher = parse_match(["job_class=A*", "job_class=B*", "severity=error"])
        assert matcher.to_dict() == {"job_class": ["A*", "B*"], "severity": ["error"]}
        assert matcher.describe() == "job_class=A*|B*, severity=error"

    @pytest.mark.parametrize(
        "value",
        [["job_class"], ["=x"], {"bad name": "x"}, {"job_class": []}, {"job_class": [""]}, "x=y"],
    )
    def test_bad_input_is_a_value_error(self, value: object) -> None:
        """Malformed matches raise ValueError with a message, never something else."""
        with pytest.raises(ValueError, match=r"\S"):
            parse_match(value)

    def test_field_value_reads_enums_and_labels(self) -> None:
        """Severity and priority read as their text; other names read labels."""
        drawn = alert(severity=Severity.CRITICAL, priority=Priority.HIGH)
        assert field_value(drawn, "severity") == "critical"
        assert field_value(drawn, "priority") == "high"
        assert field_value(drawn, "team") == "data"
        assert field_value(drawn, "service") is None
