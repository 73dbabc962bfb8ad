"""What an API process loads: its idle memory is part of what haul costs (bench "idle").

Each check runs a fresh interpreter, since this test process has imported everything.
"""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.support.paths import REPO


def _loaded_by_the_api(*prefixes: str) -> list[str]:
    code = (
        "import sys, service.api.app; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(prefixes)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout
    return list(ast.literal_eval(out))


def test_the_api_loads_neither_yt_dlp_nor_cryptography_until_it_needs_them() -> None:
    # Given the API app, built as uvicorn builds it (on import)
    # Then yt-dlp (only workers extract) and cryptography (only a cookie upload seals)
    # are not in its memory
    assert _loaded_by_the_api("yt_dlp", "cryptography") == []
