"""A pytest plugin for mutation runs (``-p tests.mutation.plugin``, set in [tool.mutmut]).

Hypothesis there must be deterministic and free of deadlines: a mutant is "killed"
only by a test that fails on it, not by a slow example on a loaded machine or a
different draw than the clean run had.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("mutants", deadline=None, derandomize=True, print_blob=False)
settings.load_profile("mutants")
