"""Endless pages and manifests against a real worker process (`dramatiq actors`): each job
fails as ``page_too_large`` within seconds, not at its time limit, and the worker's memory
stays bounded (its peak resident set, read from ``/proc``).

Before ``HAUL_MAX_PAGE_BYTES``, the generic extractor read an endless ``text/html`` body
to ~3 GB in 80 s, until the job died of ``OverflowError``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from service.media.limits import MAX_PAGE_BYTES
from tests.support.stack import TERMINAL, Stack, submit, wait_status

if TYPE_CHECKING:
    import httpx

    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

MIB = 1024**2
#: Far sooner than the probe's time limit (120 s), and than the 80 s an endless page took.
SECONDS = 30


def worker_pid(http: httpx.Client, job_id: str) -> int:
    """The process that ran the job's last attempt (a worker's name is ``host:pid/thread``)."""
    attempts = http.get(f"/v1/jobs/{job_id}/attempts").json()["items"]
    return int(attempts[-1]["worker"].rsplit(":", 1)[1].split("/")[0])


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory since it started, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


@pytest.mark.parametrize("path", ["/endless.html", "/endless.m3u8"])
def test_an_endless_page_fails_in_seconds_and_the_worker_stays_small(
    stack: Stack, media: MediaServer, path: str
) -> None:
    with stack.http() as http:
        # Given a worker that has done a real job (yt-dlp loaded, a file downloaded)
        warm = submit(http, media.url("/media/a.mp4"))
        wait_status(http, warm, {"succeeded"})
        pid = worker_pid(http, warm)
        before = peak_rss(pid)
        # When it is given a page (an HLS playlist) that never ends
        began = time.monotonic()
        job_id = submit(http, media.url(path))
        job = wait_status(http, job_id, TERMINAL, timeout=SECONDS)
        took = time.monotonic() - began
        after = peak_rss(pid)
        print(
            f"{path}: failed in {took:.1f} s; worker peak RSS {before / MIB:.0f} MiB before, "
            f"{after / MIB:.0f} MiB after; the site sent {media.sent(path) / MIB:.0f} MiB"
        )
        # Then it failed in seconds, once, as page_too_large, saying which limit
        assert job["status"] == "failed", job
        assert job["error"]["error_class"] == "page_too_large", job
        assert "HAUL_MAX_PAGE_BYTES" in job["error"]["message"]
        assert job["attempts"] == 1
        assert job["last_error"] is None
        assert worker_pid(http, job_id) == pid
        # and the worker stopped reading about the cap in, its memory bounded by it
        assert media.sent(path) < MAX_PAGE_BYTES + 64 * MIB
        assert after < before + MAX_PAGE_BYTES + 200 * MIB
