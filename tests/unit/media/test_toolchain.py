"""What haul tells yt-dlp about its JavaScript runtime, and what it reports missing."""

from __future__ import annotations

import deno
import pytest

from service.media import toolchain
from service.media.options import base_params
from service.media.toolchain import Toolchain

COMPLETE = Toolchain(
    ytdlp="2026.10.26",
    deno_path="/opt/venv/bin/deno",
    deno_version="2.9.8",
    deno_supported=True,
    ejs="0.8.0",
    aes=True,
)


def test_every_yt_dlp_run_names_the_packaged_deno_and_fetches_no_scripts() -> None:
    # Given the parameters every probe and download starts from
    params = base_params()
    # Then yt-dlp is told where Deno is, and may fetch no solver scripts
    assert params["js_runtimes"] == {"deno": {"path": deno.find_deno_bin()}}
    assert params["remote_components"] == []


def test_without_the_deno_package_no_runtime_is_configured_rather_than_one_from_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker whose `deno` package is missing
    monkeypatch.setattr(toolchain, "deno_path", lambda: None)
    # Then yt-dlp gets no runtime at all (an empty map), not a bare "deno" to look up
    assert toolchain.js_params()["js_runtimes"] == {}


def test_a_complete_toolchain_has_no_problems() -> None:
    assert COMPLETE.problems == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"deno_path": None, "deno_version": None, "deno_supported": False}, "no Deno"),
        ({"deno_version": None, "deno_supported": False}, "does not run"),
        ({"deno_version": "2.1.0", "deno_supported": False}, "older than yt-dlp supports"),
        ({"ejs": None}, "no yt-dlp-ejs"),
        ({"aes": False}, "AES-128 HLS"),
    ],
)
def test_each_missing_piece_is_named(change: dict[str, object], says: str) -> None:
    # Given a toolchain with one piece missing or broken
    broken = Toolchain(**{**COMPLETE.__dict__, **change})  # type: ignore[arg-type]
    # Then the report names it, alone
    (problem,) = broken.problems
    assert says in problem
