"""yt-dlp upgrades you can trust: two worker hosts on two yt-dlp versions, each version's
attempts counted in GET /v1/ytdlp, and `haul ytdlp update` on one host picked up by its
workers without losing the download they were running.

The second host is a second `dramatiq actors` run with its own ``HAUL_HOST_NAME``, from
a venv whose yt-dlp is an earlier release installed from PyPI (tests/support/venvs.py);
the update installs this environment's release into that venv from PyPI, as an operator
would on a real host. Without PyPI the test is skipped locally (failed under CI=true).
"""

from __future__ import annotations

import subprocess
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import yt_dlp.version

from service.domain.ytdlp import same_version
from tests.support.paths import REPO
from tests.support.stack import (
    TERMINAL,
    Stack,
    assert_invariants,
    download_outcomes,
    submit,
    wait_downloading,
    wait_status,
)
from tests.support.venvs import env_with_ytdlp, ytdlp_version
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

#: The yt-dlp release the second host starts on: the one before 2026.10.26 on PyPI (both
#: solve YouTube's challenges with EJS, so haul's toolchain check imports either).
EARLIER = "2026.10.21"
#: This environment's, as yt-dlp spells it (and attempts record it).
CURRENT = yt_dlp.version.__version__

#: How long `haul ytdlp update` may wait for the reload.
WAIT = ("--wait", "90")

STACK_ENV = {
    "HAUL_HOST_NAME": "host-a",
    # Hosts report every second, so a stopped one shows as gone within seconds.
    "HAUL_HOST_REPORT_S": "1",
    "HAUL_LEASE_S": "10",
}


@pytest.fixture(scope="module")
def earlier_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second environment whose yt-dlp is :data:`EARLIER` (made once for the module)."""
    assert EARLIER != CURRENT, "pick an EARLIER release than the one installed"
    python = env_with_ytdlp(tmp_path_factory.mktemp("host-b") / "venv", EARLIER)
    assert ytdlp_version(python) == EARLIER
    return python


def _versions(admin: httpx.Client) -> dict[str, Any]:
    response = admin.get("/v1/ytdlp", params={"window_s": 3600})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _host_b(stack: Stack) -> dict[str, str]:
    return {**stack.env, "HAUL_HOST_NAME": "host-b"}


@pytest.mark.timeout(600)  # two pip installs from PyPI on a busy machine
def test_two_hosts_on_two_versions_and_an_update_that_loses_no_job(
    stack: Stack, media: MediaServer, earlier_python: Path
) -> None:
    admin_key, _ = stack.create_client("operator", "--admin")
    with stack.http() as http, stack.http(admin_key) as admin:
        # Given host-a (this environment) has run a job
        first = submit(http, media.url("/media/a.mp4"))
        assert wait_status(http, first, TERMINAL)["status"] == "succeeded"
        # and host-b, on the earlier yt-dlp, has run one while host-a was stopped
        stack.stop("worker")
        stack.start_worker(
            "host-b", dramatiq=earlier_python.parent / "dramatiq", env=_host_b(stack)
        )
        stack.wait_worker_ready("host-b")
        gets = media.hits("/media/b.mp4", "GET")
        second = submit(http, media.url("/media/b.mp4"))
        assert wait_status(http, second, TERMINAL)["status"] == "succeeded"
        gets = media.hits("/media/b.mp4", "GET") - gets  # a job's GETs: probe, download

        # When an admin looks at the fleet's yt-dlp
        view = _versions(admin)

        # Then each host shows the version it runs, and each version its attempts
        hosts = {h["host"]: h for h in view["hosts"]}
        assert hosts["host-a"]["ytdlp_version"] == CURRENT
        assert hosts["host-b"]["ytdlp_version"] == EARLIER
        assert hosts["host-b"]["alive"] is True
        assert hosts["host-b"]["deno_version"], "host-b found no Deno"
        versions = {v["version"]: v for v in view["versions"]}
        for version in (CURRENT, EARLIER):  # a probe and a download each, both succeeded
            assert versions[version]["outcomes"] == {"succeeded": 2}, versions
            assert versions[version]["success_rate"] == 1.0
        assert versions[EARLIER]["hosts"] == ["host-b"]
        assert [v["version"] for v in view["versions"]][:2] == [CURRENT, EARLIER]

        # Given a long download under way on host-b, the only worker (the GETs of its first
        # attempt are slow, those after it are not)
        slow = f"/slow/long.mp4?bps=40000&key={uuid.uuid4().hex}&times={gets}"
        job = submit(http, media.url(slow))
        wait_downloading(http, job)

        # When host-b's operator updates its yt-dlp to this environment's release
        update = subprocess.run(
            [
                str(earlier_python),
                "-m",
                "service.cli",
                "ytdlp",
                "update",
                "--channel",
                CURRENT,
                *WAIT,
            ],
            env=_host_b(stack),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=200,
        )
        assert update.returncode == 0, update.stderr
        (installed,) = update.stdout.split()
        assert same_version(installed, CURRENT), update.stdout

        # Then host-b's same main process runs the new version
        assert stack.processes["host-b"].poll() is None
        assert ytdlp_version(earlier_python) == CURRENT
        assert "handed back" in stack.log("host-b")
        # and the download was handed back without spending an attempt, then finished there
        done = wait_status(http, job, TERMINAL, timeout=90)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 1
        assert download_outcomes(http, job) == ["handed_back", "succeeded"]
        downloads = [
            a["ytdlp_version"]
            for a in http.get(f"/v1/jobs/{job}/attempts").json()["items"]
            if a["step"] == "download"
        ]
        assert downloads == [EARLIER, CURRENT]
        host_b = wait_for(
            lambda: next(
                (
                    h
                    for h in _versions(admin)["hosts"]
                    if h["host"] == "host-b" and h["ytdlp_version"] == CURRENT
                ),
                None,
            ),
            timeout=10,
            what="host-b to report the new version",
        )
        assert host_b["reload_pending"] is False and host_b["alive"] is True
    assert_invariants(stack)
