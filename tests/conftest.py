"""Shared test set-up: the hypothesis settings profile every property test runs under,
and pytest's assertion rewriting for the contract suite in ``chaperone.testing``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Before anything imports it, so the suite's failed checks show pytest's full comparison.
pytest.register_assert_rewrite("chaperone.testing")

settings.register_profile("ci", deadline=None, derandomize=False, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
