"""Hypothesis profiles of the fuzz tests, chosen by the environment variable PHONEHOME_FUZZ_PROFILE.

- ``ci`` (the default, what ``pytest tests/fuzz`` and CI run): few examples per
  test, derandomized (the same examples on every run, so CI is stable), no
  database; the whole of tests/fuzz in well under a minute on two cores.
- ``long`` (``scripts/fuzz``): PHONEHOME_FUZZ_EXAMPLES examples per test (default
  5,000), random, no deadline, failures saved to .hypothesis/ and replayed first
  on the next run.

The profiles are registered here but never loaded globally, so the other
hypothesis tests of the suite keep their own settings: every fuzz test is
decorated with ``FUZZ``.
"""

import os
from typing import Final

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE: Final = "PHONEHOME_FUZZ_PROFILE"
EXAMPLES_VARIABLE: Final = "PHONEHOME_FUZZ_EXAMPLES"
_QUIET: Final = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    max_examples=80,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get(EXAMPLES_VARIABLE) or 5000),
    deadline=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)

PROFILE: Final = os.environ.get(PROFILE_VARIABLE) or "ci"
if PROFILE not in {"ci", "long"}:
    raise ValueError(f"{PROFILE_VARIABLE}={PROFILE!r}: expected ci or long")
FUZZ: Final = settings.get_profile(PROFILE)
"""The chosen profile, as a decorator for every fuzz test."""
