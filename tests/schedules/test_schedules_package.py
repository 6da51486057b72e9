"""The schedules package loads its names when first used: the configuration, read at every
start, pays for the schedule model only, not for the store behind the state.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import chaperone.schedules


class TestLazyNames:
    def test_every_public_name_loads(self) -> None:
        """Each name of ``__all__`` is there when asked for, and ``dir`` lists them."""
        for name in chaperone.schedules.__all__:
            assert getattr(chaperone.schedules, name) is not None, name
        assert set(chaperone.schedules.__all__) <= set(dir(chaperone.schedules))

    def test_reading_the_configuration_leaves_the_store_unloaded(self) -> None:
        """A fresh interpreter that imports the configuration has not imported the store
        nor the supervision (the schedules' state and declarations need them)."""
        probe = (
            "import sys, chaperone.config; "
            "print(sorted(m for m in ('chaperone.store', 'chaperone.supervision', "
            "'chaperone.schedules._state') if m in sys.modules))"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]"

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        """A name the package does not have raises AttributeError naming it."""
        with pytest.raises(AttributeError, match="nothing_here"):
            chaperone.schedules.nothing_here  # type: ignore[attr-defined]  # noqa: B018
