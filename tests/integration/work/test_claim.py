"""The worker's claim (``work/claim.py``) on a real database: what a claim returns and what
it leaves on the row, when the gate holds the job instead (no attempt spent), when the
job is out of attempts (failed), when another worker holds it (untouched), and a paced
site's start (the claim waits for it, then lets the next held job go).

The gate's own decisions are pinned in ``tests/integration/fleet/``; these pin the claim
around it, so that a changed claim fails here in seconds (mutation testing,
docs/testing.md).
"""

from __future__ import annotations

import re
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
import structlog

from service.db import control as control_rows
from service.db import sites as site_rows
from service.db.extractions import JobExtraction
from service.db.models import Client, SiteBreaker
from service.domain.states import Phase, Status, Step
from service.fleet.sweeps import expired_leases
from service.intake.clients import create_client
from service.media.download import YTDLP_VERSION
from service.runtime import build_runtime
from service.work import claim as claiming
from service.work.claim import Claimed, claim
from tests.support.jobs import attempts_of, job_maker, must
from tests.support.logs import captured
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, MutableMapping

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

SITE = "media.example"
OTHER_OWNER = "worker-2/efgh"
#: How far a timestamp read back may differ from one computed here (float seconds).
SLACK = timedelta(milliseconds=20)


@pytest.fixture(autouse=True)
def no_context_left() -> Iterator[None]:
    """A claim binds its job to the thread's log context: none is left for the next test."""
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


@contextmanager
def tuned(settings: Settings, **update: Any) -> Iterator[Runtime]:
    """A runtime whose settings differ from the test's in ``update``."""
    rt = build_runtime(settings.model_copy(update=update))
    try:
        yield rt
    finally:
        rt.marks.close()
        rt.broker.close()
        rt.db.dispose()


def a_client(runtime: Runtime, **fields: Any) -> Client:
    """A fresh client, with ``fields`` written on its row."""
    client, _ = create_client(runtime, f"claim-{uuid.uuid4().hex[:6]}")
    if fields:
        with runtime.db.session() as session:
            session.execute(sa.update(Client).where(Client.id == client.id).values(**fields))
    return client


def queued(runtime: Runtime, client: Client | None = None, **fields: Any) -> uuid.UUID:
    """A job waiting for its download on SITE."""
    fields.setdefault("site", SITE)
    return job_maker(runtime, client or a_client(runtime))(**fields)


def claimed_now(runtime: Runtime, job_id: uuid.UUID) -> Claimed:
    taken = claim(runtime, job_id, Step.DOWNLOAD, Phase.DOWNLOADING)
    assert taken is not None, "the claim held or dropped the job"
    return taken


def database_now(runtime: Runtime) -> Any:
    with runtime.db.session() as session:
        return session.execute(sa.select(sa.func.now())).scalar_one()


def running_elsewhere(runtime: Runtime, client: Client, **fields: Any) -> uuid.UUID:
    """A job of ``client`` another worker runs under a live lease (unless told otherwise)."""
    fields.setdefault("lease_expires_in", timedelta(minutes=5))
    return queued(
        runtime,
        client,
        status=Status.RUNNING.value,
        phase=Phase.DOWNLOADING.value,
        lease_owner=OTHER_OWNER,
        attempts=1,
        **fields,
    )


def events(logged: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logged if e["event"] == name]


# --- a claim that goes ahead --------------------------------------------------------------------


def test_a_claim_runs_the_job_for_one_attempt_under_a_lease_of_its_own(
    runtime: Runtime, settings: Settings
) -> None:
    job_id = queued(runtime)
    before = database_now(runtime)
    taken = claimed_now(runtime, job_id)
    after = database_now(runtime)

    assert re.fullmatch(rf"{re.escape(settings.worker_name)}/[0-9a-f]{{8}}", taken.owner)
    stored = must(runtime, job_id)
    assert (stored.status, stored.phase, stored.attempts) == ("running", "downloading", 1)
    assert stored.lease_owner == taken.owner
    lease = timedelta(seconds=settings.lease_s)
    assert stored.lease_expires_at is not None
    assert before + lease <= stored.lease_expires_at <= after + lease
    assert (taken.job.id, taken.job.status, taken.job.attempts) == (job_id, "running", 1)
    assert taken.job.lease_owner == taken.owner
    (attempt,) = attempts_of(runtime, job_id)
    assert (attempt.number, attempt.step, attempt.worker) == (1, "download", taken.owner)
    assert attempt.ytdlp_version == YTDLP_VERSION


def test_the_attempts_log_lines_name_the_job_its_client_the_attempt_and_the_step(
    runtime: Runtime,
) -> None:
    client = a_client(runtime)
    job_id = queued(runtime, client, attempts=1)
    expected = {
        "job_id": str(job_id),
        "client_id": str(client.id),
        "attempt": 2,
        "step": "download",
    }
    with captured(claiming) as logged:
        taken = claimed_now(runtime, job_id)
        taken.log.info("working")
    (line,) = events(logged, "working")
    assert {k: line.get(k) for k in expected} == expected
    bound = structlog.contextvars.get_contextvars()
    assert {k: bound.get(k) for k in expected} == expected, "the lease keeper's and yt-dlp's"


def test_a_claim_of_a_client_with_nothing_set_says_so(runtime: Runtime) -> None:
    """No limit, no probe info, no quota, no cookies, no endpoint, no breaker: the attempt
    skips every look that would find nothing."""
    taken = claimed_now(runtime, queued(runtime))
    assert taken.limited is False
    assert taken.probed is None
    assert taken.storage_quota is None
    assert taken.has_cookies is False
    assert taken.has_endpoint is False
    assert taken.breaker_seen is False
    assert taken.unheard is True


def test_a_claim_says_what_the_client_and_the_site_have(runtime: Runtime) -> None:
    client = a_client(
        runtime, storage_quota_bytes=5_000, default_callback_url="https://hooks.example/a"
    )
    job_id = queued(runtime, client)
    with runtime.db.session() as session:
        session.execute(
            sa.text(
                "INSERT INTO site_cookies (client_id, site, sealed, count) "
                "VALUES (:c, :s, 'sealed', 1)"
            ),
            {"c": client.id, "s": SITE},
        )
        session.add(SiteBreaker(site=SITE, identity="guest", state="closed"))
    taken = claimed_now(runtime, job_id)
    assert taken.storage_quota == 5_000
    assert taken.has_cookies is True
    assert taken.has_endpoint is True
    assert taken.breaker_seen is True
    assert taken.unheard is False


# --- a claim held by the gate -------------------------------------------------------------------


def paused_queue(runtime: Runtime, client: Client) -> str:
    with runtime.db.session() as session:
        control_rows.set_paused(session, Step.DOWNLOAD.value, True)
    return "queue_paused"


def paused_client(runtime: Runtime, client: Client) -> str:
    with runtime.db.session() as session:
        control_rows.set_client_paused(session, client.id, True)
    return "client_paused"


def full_queue(runtime: Runtime, client: Client) -> str:
    with runtime.db.session() as session:
        control_rows.set_max_running(session, Step.DOWNLOAD.value, 1)
    running_elsewhere(runtime, a_client(runtime))
    return "queue_full"


@pytest.mark.parametrize("stop", [paused_queue, paused_client, full_queue])
def test_a_held_claim_spends_no_attempt_and_says_why_on_the_row(
    runtime: Runtime, stop: Callable[[Runtime, Client], str]
) -> None:
    client = a_client(runtime)
    job_id = queued(runtime, client, published_at_ago=timedelta(seconds=1))
    reason = stop(runtime, client)

    with captured(claiming) as logged:
        assert claim(runtime, job_id, Step.DOWNLOAD, Phase.DOWNLOADING) is None

    stored = must(runtime, job_id)
    assert (stored.status, stored.held, stored.attempts) == ("queued", reason, 0)
    assert stored.lease_owner is None
    assert stored.published_at is None, "its message is spent: a release publishes it again"
    assert attempts_of(runtime, job_id) == []
    (line,) = events(logged, "job held")
    assert (line["job_id"], line["step"], line["held"]) == (str(job_id), "download", reason)
    assert structlog.contextvars.get_contextvars() == {}, "no attempt: nothing bound"


# --- a claim that cannot be made ----------------------------------------------------------------


def test_a_job_out_of_attempts_is_failed_and_not_claimed(runtime: Runtime) -> None:
    job_id = queued(runtime, attempts=4, max_attempts=4)

    with captured(claiming) as logged:
        assert claim(runtime, job_id, Step.DOWNLOAD, Phase.DOWNLOADING) is None

    stored = must(runtime, job_id)
    assert (stored.status, stored.error_class, stored.attempts) == (
        "failed",
        "attempts_exhausted",
        4,
    )
    assert attempts_of(runtime, job_id) == []
    (line,) = events(logged, "message dropped: the job is not claimable")
    assert (line["job_id"], line["step"]) == (str(job_id), "download")


def test_a_job_another_worker_holds_is_left_to_it(runtime: Runtime) -> None:
    job_id = running_elsewhere(runtime, a_client(runtime))
    before = must(runtime, job_id)

    with captured(claiming) as logged:
        assert claim(runtime, job_id, Step.DOWNLOAD, Phase.DOWNLOADING) is None

    after = must(runtime, job_id)
    assert (after.status, after.lease_owner, after.attempts) == ("running", OTHER_OWNER, 1)
    assert after.lease_expires_at == before.lease_expires_at
    assert after.error_class is None
    assert events(logged, "message dropped: the job is not claimable")
    assert structlog.contextvars.get_contextvars() == {}


@pytest.mark.parametrize("stop", [paused_queue, paused_client, full_queue])
def test_a_held_queue_does_not_let_a_dead_workers_job_be_taken_over(
    runtime: Runtime, stop: Callable[[Runtime, Client], str]
) -> None:
    # A takeover is a start like any other: once a pause has answered, none begins.
    client = a_client(runtime)
    job_id = running_elsewhere(runtime, client, lease_expires_in=-timedelta(seconds=1))
    reason = stop(runtime, client)

    with captured(claiming) as logged:
        assert claim(runtime, job_id, Step.DOWNLOAD, Phase.DOWNLOADING) is None

    after = must(runtime, job_id)
    assert (after.status, after.lease_owner, after.attempts) == ("running", OTHER_OWNER, 1)
    assert attempts_of(runtime, job_id) == []
    assert events(logged, "message dropped: the job is not claimable")
    # The lease sweep requeues it: a pause holds it there, a full queue at its next claim
    assert expired_leases(runtime) == (1, 0)
    swept = must(runtime, job_id)
    paused = reason != "queue_full"
    assert (swept.status, swept.held, swept.attempts) == ("queued", reason if paused else None, 1)


# --- a paced site -------------------------------------------------------------------------------


def held_paced(runtime: Runtime) -> uuid.UUID:
    """A job of SITE held ``site_paced``: the start before it releases it."""
    return queued(runtime, held="site_paced")


def reserved_start(runtime: Runtime, interval_s: float, in_s: float) -> Any:
    """SITE paced at one start per ``interval_s`` without jitter, its last start reserved
    ``in_s`` seconds from now (the database's time, returned). Called last before the
    claim, so that the start is still ahead when the claim begins."""
    with runtime.db.session() as session:
        site_rows.put_site(session, SITE, {"min_interval_s": interval_s, "jitter": 0.0})
        return session.execute(
            sa.update(site_rows.SiteLimit)
            .where(site_rows.SiteLimit.site == SITE)
            .values(next_start_at=sa.func.now() + timedelta(seconds=in_s))
            .returning(site_rows.SiteLimit.next_start_at)
        ).scalar_one()


def test_a_paced_claim_starts_at_its_reserved_start_and_lets_the_next_job_come(
    runtime: Runtime, settings: Settings
) -> None:
    # Given a paced site whose next start is under a second away, and a job held behind it
    waiting = held_paced(runtime)
    job_id = queued(runtime)
    at = reserved_start(runtime, interval_s=1.0, in_s=0.95)

    # When a job of the site is claimed
    taken = claimed_now(runtime, job_id)

    # Then the claim returns no earlier than that start, with the wait added to its lease
    assert database_now(runtime) >= at - SLACK
    lease = must(runtime, job_id).lease_expires_at
    assert lease is not None and lease >= at + timedelta(seconds=settings.lease_s) - SLACK
    assert taken.job.id == job_id
    # ... and the held job is released and published, to come and reserve the start after it
    assert must(runtime, waiting).held is None
    messages = take_messages(f"{settings.queue_prefix}.download")
    assert [m["args"][0] for m, _ in messages] == [str(waiting)]


def test_a_paced_job_out_of_attempts_does_not_wait_for_its_start(runtime: Runtime) -> None:
    """Its start was reserved, but there is no attempt to start: the next job may come."""
    waiting = held_paced(runtime)
    job_id = queued(runtime, attempts=4, max_attempts=4)
    reserved_start(runtime, interval_s=5.0, in_s=3.0)

    began = time.monotonic()
    assert claim(runtime, job_id, Step.DOWNLOAD, Phase.DOWNLOADING) is None
    assert time.monotonic() - began < 1.5, "slept for a start it will not use"

    assert must(runtime, job_id).status == "failed"
    assert must(runtime, waiting).held is None


# --- what a claim says, in detail ---------------------------------------------------------------


def test_each_claim_has_an_owner_of_its_own(runtime: Runtime) -> None:
    client = a_client(runtime)
    first = claimed_now(runtime, queued(runtime, client))
    second = claimed_now(runtime, queued(runtime, client))
    assert first.owner != second.owner


def test_the_storage_quota_is_the_clients_own_else_the_deployments(
    runtime: Runtime, settings: Settings
) -> None:
    with tuned(settings, client_storage_quota_bytes=1_000) as rt:
        default = claimed_now(rt, queued(rt))
        own = claimed_now(rt, queued(rt, a_client(rt, storage_quota_bytes=500)))
        nothing = claimed_now(rt, queued(rt, a_client(rt, storage_quota_bytes=0)))
    assert (default.storage_quota, own.storage_quota, nothing.storage_quota) == (1_000, 500, 0)


def test_a_job_is_unheard_only_with_neither_its_own_callback_nor_a_default_endpoint(
    runtime: Runtime,
) -> None:
    """An unheard job's end announces nothing (no query after the commit)."""
    cases = [
        (None, None, True),
        ("https://hooks.example/job", None, False),
        (None, "https://hooks.example/client", False),
    ]
    for callback_url, endpoint, unheard in cases:
        client = a_client(runtime, default_callback_url=endpoint)
        taken = claimed_now(runtime, queued(runtime, client, callback_url=callback_url))
        assert taken.unheard is unheard, (callback_url, endpoint)


def test_a_queue_limit_makes_the_claim_limited(runtime: Runtime) -> None:
    """A limited attempt's end releases held jobs: the claim must say it was limited."""
    with runtime.db.session() as session:
        control_rows.set_max_running(session, Step.DOWNLOAD.value, 5)
    assert claimed_now(runtime, queued(runtime)).limited is True


def test_the_probes_info_is_handed_to_the_download_once(runtime: Runtime) -> None:
    job_id = queued(runtime)
    info = {"id": "v", "title": "A video", "formats": [{"format_id": "18"}]}
    with runtime.db.session() as session:
        session.add(JobExtraction(job_id=job_id, info=info))
    assert claimed_now(runtime, job_id).probed == info
    with runtime.db.session() as session:
        assert session.get(JobExtraction, job_id) is None, "taken, not left for a retry"


# --- the deployment's defaults at the gate ------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "reason"),
    [("site_max_running", "site_full"), ("client_max_running", "client_busy")],
)
def test_the_deployments_default_limits_hold_a_claim(
    runtime: Runtime, settings: Settings, limit: str, reason: str
) -> None:
    with tuned(settings, **{limit: 1}) as rt:
        client = a_client(rt)
        running_elsewhere(rt, client)
        job_id = queued(rt, client)
        assert claim(rt, job_id, Step.DOWNLOAD, Phase.DOWNLOADING) is None
        assert (must(rt, job_id).held, must(rt, job_id).attempts) == (reason, 0)


def test_the_deployments_default_pacing_holds_a_claim_past_the_reserved_starts(
    runtime: Runtime, settings: Settings
) -> None:
    """A site without its own interval is paced by ``HAUL_SITE_MIN_INTERVAL_S``."""
    with tuned(settings, site_min_interval_s=60.0, site_pacing_jitter=0.0) as rt:
        with rt.db.session() as session:
            site_rows.put_site(
                session, SITE, {"next_start_at": sa.func.now() + sa.text("interval '1 hour'")}
            )
        job_id = queued(rt)
        assert claim(rt, job_id, Step.DOWNLOAD, Phase.DOWNLOADING) is None
        assert (must(rt, job_id).held, must(rt, job_id).attempts) == ("site_paced", 0)
