"""GET /v1/ytdlp in-process: who may see it, the hosts' reports, and each version's attempts
in a window, counted from real rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db import hosts as host_rows
from service.db.models import JobAttempt, WorkerHost
from tests.support.api import problem, submit

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def _attempts(
    runtime: Runtime, job_id: str, *rows: tuple[str | None, str, str | None, int]
) -> None:
    """Ended attempts of one job: (version, outcome, error class, hours ago)."""
    with runtime.db.session() as session:
        for number, (version, outcome, error_class, hours) in enumerate(rows, 1):
            ended = NOW - timedelta(hours=hours)
            session.add(
                JobAttempt(
                    job_id=uuid.UUID(job_id),
                    number=number,
                    step="download",
                    worker="w/1",
                    started_at=ended - timedelta(seconds=5),
                    finished_at=ended,
                    outcome=outcome,
                    error_class=error_class,
                    ytdlp_version=version,
                )
            )


def _report(runtime: Runtime, host: str, version: str, *, silent_s: float = 0) -> None:
    with runtime.db.session() as session:
        host_rows.report(
            session,
            host,
            ytdlp_version=version,
            ytdlp_installed=version,
            ejs_version="0.8.0",
            deno_version="2.9.8",
        )
        if silent_s:
            session.execute(
                sa.update(WorkerHost)
                .where(WorkerHost.host == host)
                .values(last_seen_at=sa.func.now() - timedelta(seconds=silent_s))
            )


def test_only_an_admin_sees_the_fleets_yt_dlp(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    problem(api.get("/v1/ytdlp", headers=auth), 403)
    problem(api.get("/v1/ytdlp"), 401)


@pytest.mark.parametrize("window", ["59", "7776001", "a day", "-1"])
def test_a_bad_window_is_a_problem(
    api: TestClient[Litestar], admin: dict[str, str], window: str
) -> None:
    problem(api.get("/v1/ytdlp", params={"window_s": window}, headers=admin), 422)


def test_hosts_and_each_versions_attempts_in_the_window(
    api: TestClient[Litestar], runtime: Runtime, admin: dict[str, str], auth: dict[str, str]
) -> None:
    # Given attempts of two versions, one of them also long ago, and one without a version
    job = submit(api, auth)["id"]
    _attempts(
        runtime,
        job,
        ("2026.10.26", "succeeded", None, 1),
        ("2026.10.26", "succeeded", None, 2),
        ("2026.10.26", "retry", "rate_limited", 3),
        ("2026.10.26", "handed_back", None, 3),
        ("2026.10.26", "failed", "extractor", 48),  # outside a one-day window
        ("2026.11.02.233024.dev0", "failed", "extractor", 1),
        ("2026.11.02.233024.dev0", "succeeded", None, 1),
        (None, "succeeded", None, 1),
    )
    # and hosts on each, one of them silent for longer than three report intervals
    _report(runtime, "host-a", "2026.10.26")
    _report(runtime, "host-b", "2026.11.02.233024.dev0")
    _report(runtime, "host-c", "2026.10.26", silent_s=3 * runtime.settings.host_report_s + 5)

    # When an admin asks for the last day
    response = api.get("/v1/ytdlp", headers=admin)

    # Then each host shows what it runs, and each version its attempts of that day
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window_s"] == 86_400
    hosts = {h["host"]: h for h in body["hosts"]}
    assert sorted(hosts) == ["host-a", "host-b", "host-c"]
    assert hosts["host-a"]["ytdlp_version"] == "2026.10.26"
    assert hosts["host-b"]["deno_version"] == "2.9.8"
    assert [hosts[h]["alive"] for h in sorted(hosts)] == [True, True, False]
    versions = {v["version"]: v for v in body["versions"]}
    assert [v["version"] for v in body["versions"]] == [
        "2026.11.02.233024.dev0",
        "2026.10.26",
        "unknown",
    ]
    stable = versions["2026.10.26"]
    assert stable["outcomes"] == {"succeeded": 2, "retry": 1, "handed_back": 1}
    assert stable["attempts"] == 4
    assert stable["success_rate"] == pytest.approx(2 / 3)
    assert stable["error_classes"] == {"rate_limited": 1}
    assert stable["hosts"] == ["host-a"]  # host-c is gone
    nightly = versions["2026.11.02.233024.dev0"]
    assert (nightly["success_rate"], nightly["error_classes"]) == (0.5, {"extractor": 1})
    assert nightly["hosts"] == ["host-b"]

    # And a wider window takes in the older failure
    week = api.get("/v1/ytdlp", params={"window_s": 7 * 86_400}, headers=admin).json()
    older = next(v for v in week["versions"] if v["version"] == "2026.10.26")
    assert older["outcomes"]["failed"] == 1 and older["error_classes"]["extractor"] == 1


def test_a_hosts_report_moves_since_only_when_its_version_changes(runtime: Runtime) -> None:
    # Given a host that reported a version, then reported again
    _report(runtime, "host-a", "2026.10.22")
    with runtime.db.session() as session:
        (first,) = host_rows.seen(session)
    _report(runtime, "host-a", "2026.10.22")
    with runtime.db.session() as session:
        (again,) = host_rows.seen(session)
    # When it reports another version
    _report(runtime, "host-a", "2026.10.26")
    with runtime.db.session() as session:
        (moved,) = host_rows.seen(session)

    # Then `since` stayed put through the same version and moved with the new one
    assert again.since == first.since and again.last_seen_at >= first.last_seen_at
    assert moved.ytdlp_version == "2026.10.26" and moved.since > first.since
