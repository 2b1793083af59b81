"""Test-suite settings: the Hypothesis profiles.

``ci`` (the default, what the README's test command and CI run): derandomized, so every run
draws the same examples and a failure reproduces anywhere; no deadline (a 2-core machine under
load makes timings meaningless, and timing belongs in benchmarks/). ``dev``: fresh random
examples on every run (the same number per test), for exploring locally:
``HYPOTHESIS_PROFILE=dev python -m pytest``.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
