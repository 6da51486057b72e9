"""The plugin's tests run under Chaperone's hypothesis profile, with pytest's full
comparisons in the failed checks of the contract suite.
"""

import pytest

# Before anything imports it, so the suite's failed checks show pytest's full comparison.
pytest.register_assert_rewrite("chaperone.testing")

from chaperone.testing import load_hypothesis_profile  # noqa: E402

load_hypothesis_profile()
