"""The hypothesis settings profile Chaperone's tests, and its plugins' tests, run under."""

from __future__ import annotations

import os
from typing import Final

import hypothesis
from hypothesis import HealthCheck

__all__ = ["HYPOTHESIS_PROFILE", "hypothesis_profile", "load_hypothesis_profile"]

HYPOTHESIS_PROFILE: Final = "chaperone"
"""The profile's name: ``settings.load_profile("chaperone")`` once ``chaperone.testing`` is
imported."""

hypothesis_profile: Final = hypothesis.settings(
    deadline=None,
    derandomize=False,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
"""100 examples a property, with no deadline and no too-slow check: test machines are
shared and loaded, and a test must not fail because drawing its examples took long."""

hypothesis.settings.register_profile(HYPOTHESIS_PROFILE, hypothesis_profile)


def load_hypothesis_profile() -> None:
    """Load the profile ``HYPOTHESIS_PROFILE`` names in the environment, else Chaperone's:
    call it from a ``conftest.py``.
    """
    hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", HYPOTHESIS_PROFILE))
