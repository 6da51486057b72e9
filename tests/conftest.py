"""Shared test set-up: the hypothesis settings profile every property test runs under,
pytest's assertion rewriting for the contract suite in ``chaperone.testing``, and one real
Redis server for the whole session (``redis_server``: the store and delivery tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from helpers.redis_server import RedisServer, redis_server_or_skip
from helpers.report import LINES

# Before anything imports it, so the suite's failed checks show pytest's full comparison.
pytest.register_assert_rewrite("chaperone.testing")

# No deadline and no too-slow check: CI machines are shared and loaded, and a test must not
# fail because drawing its examples took long.
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=False,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis server for the whole session (skips when there is no server binary)."""
    binary = redis_server_or_skip()
    with RedisServer(binary, tmp_path_factory.mktemp("redis")) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the tests reported (the fault matrix's counts, measured delays)."""
    if LINES:
        terminalreporter.section("what the tests measured")
        for line in LINES:
            terminalreporter.write_line(line)
