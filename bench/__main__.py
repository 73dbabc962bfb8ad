"""Entry point of ``just bench``; no scenario is written yet, and it says so."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    print("no benchmarks yet: see bench/README.md", file=sys.stderr)
    sys.exit(2)
