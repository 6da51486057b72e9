"""Shared test set-up: the hypothesis settings profile every property test runs under,
pytest's assertion rewriting for the contract suite in ``chaperone.testing``, and one real
Redis server for the whole session (``redis_server``: the store and delivery tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from helpers.redis_server import RedisServer, redis_server_or_skip

# Before anything imports it, so the suite's failed checks show pytest's full comparison.
pytest.register_assert_rewrite("chaperone.testing")

settings.register_profile("ci", deadline=None, derandomize=False, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis server for the whole session (skips when there is no server binary)."""
    binary = redis_server_or_skip()
    with RedisServer(binary, tmp_path_factory.mktemp("redis")) as server:
        yield server
