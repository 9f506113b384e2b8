"""Hypothesis runs derandomized by default so that CI is reproducible; ``HYPOTHESIS_PROFILE=explore`` searches anew
with more examples."""

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=500, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
