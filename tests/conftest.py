"""Shared test set-up: the hypothesis settings profile every property test runs under
(``chaperone.testing``'s), pytest's assertion rewriting for the contract suite in
``chaperone.testing``, and one real Redis server for the whole session
(``redis_server``: the store and delivery tests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# Before anything imports it, so the suite's failed checks show pytest's full comparison.
pytest.register_assert_rewrite("chaperone.testing")

from chaperone.testing import load_hypothesis_profile  # noqa: E402
from chaperone.testing.redis_server import RedisServer, redis_server_or_skip  # noqa: E402
from helpers.report import LINES  # noqa: E402

# The profile plugins' tests run under too: no deadline and no too-slow check (CI machines
# are shared and loaded, and a test must not fail because drawing its examples took long).
load_hypothesis_profile()


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
