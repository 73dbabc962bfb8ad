"""4. Scale of the table: haul's queries on a million job rows.

The sweep queries, the list endpoint's first and deep pages, and the worker's
claim, heartbeat and finish, each called through haul's own functions and timed
on two tables generated alike (``bench.table_data``): the big one and one a
hundred times smaller as the baseline (a query that scales well takes about as
long on both). Each statement is also explained with ``EXPLAIN (ANALYZE)``.
"""

from __future__ import annotations

import secrets
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from bench import table_data
from bench.plans import Plan, explaining, timed
from bench.report import Figure, Outcome
from bench.stack import HaulStack
from bench.stats import Sample, fmt, percentile
from service.db import finders, transitions
from service.db.models import Job
from service.domain import BATCH
from service.domain.control import Hold
from service.domain.states import Phase, Status, Step
from service.intake.jobs import encode_cursor, list_jobs
from service.runtime import build_runtime
from service.settings import Settings
from service.work.claim import _claim_or_give_up

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.sizes import Sizes
    from bench.stack import Context
    from service.db.models import Client
    from service.runtime import Runtime

TITLE = "4. Scale of the table"
TARGET_MS = 10.0
HTTP_REPEATS = 30


@dataclass
class Measured:
    """One operation on one table: its timings (ms) and the plans of its statements."""

    times: list[float]
    plans: list[Plan]


def run(ctx: Context, sizes: Sizes) -> Outcome:
    rows = sizes.table_rows
    small_rows = max(1_000, rows // 100)
    big, small = HaulStack(ctx, "table"), HaulStack(ctx, "tablesmall")
    results: dict[str, dict[str, Measured]] = {}
    http: dict[str, dict[str, list[float]]] = {}
    generation: dict[str, float] = {}
    try:
        for stack, n in ((big, rows), (small, small_rows)):
            key = stack.create_key("big")
            began = time.perf_counter()
            table_data.generate(stack.database, n, str(stack.client_id()))
            generation[stack.label] = time.perf_counter() - began
            results[stack.label] = _measure(stack, sizes.table_repeats)
            http[stack.label] = _http(stack, key)
            stack.stop("api")
    finally:
        big.close()
        small.close()
    return _outcome(
        sizes, rows, small_rows, results["table"], results["tablesmall"], http, generation
    )


def _measure(stack: HaulStack, repeats: int) -> dict[str, Measured]:
    settings = Settings(
        _env_file=None, database_url=stack.env["HAUL_DATABASE_URL"], log_level="WARNING"
    )
    rt = build_runtime(settings)
    try:
        return {name: _one(rt, work, repeats) for name, work in _operations(rt, stack).items()}
    finally:
        rt.db.dispose()


def _one(rt: Runtime, work: Callable[[], object], repeats: int) -> Measured:
    with explaining(rt.db) as plans:
        work()
    return Measured(timed(work, repeats), plans)


def _operations(rt: Runtime, stack: HaulStack) -> dict[str, Callable[[], object]]:
    client = _big_client(rt, stack)
    republish = timedelta(seconds=rt.settings.republish_after_s)
    lease = timedelta(seconds=rt.settings.lease_s)
    deep = _cursor(stack, client.id, None)
    deep_failed = _cursor(stack, client.id, Status.FAILED)
    queued = [
        uuid.UUID(str(r[0]))
        for r in stack.query(
            "SELECT id FROM jobs WHERE status = 'queued' AND step = 'download' ORDER BY created_at"
        )
    ]
    claimed: list[tuple[uuid.UUID, str]] = []

    def rolled_back(query: Callable[[Any], object]) -> Callable[[], object]:
        """A sweep's read (and row locks) in a transaction that is then rolled back."""

        def work() -> object:
            with rt.db.sessions() as session, session.begin() as tx:
                found = query(session)
                tx.rollback()
                return found

        return work

    def claim() -> object:
        owner = f"bench:{secrets.token_hex(4)}"
        job_id = queued.pop()
        taken = _claim_or_give_up(rt, job_id, Step.DOWNLOAD, owner, Phase.DOWNLOADING)
        got = None if isinstance(taken, Hold) else taken.job
        if got is None:
            raise RuntimeError(f"could not claim queued job {job_id}")
        claimed.append((job_id, owner))
        return got

    def heartbeat() -> object:
        job_id, owner = claimed[len(claimed) // 2]
        with rt.db.session() as session:
            return transitions.heartbeat(session, job_id, owner, lease, bytes_done=1, progress=0.1)

    def finish() -> object:
        job_id, owner = claimed.pop()
        with rt.db.session() as session:
            return transitions.end_job(
                session, job_id, Status.SUCCEEDED, owner=owner, only_from=(Status.RUNNING,)
            )

    return {
        "sweep: expired leases": rolled_back(lambda s: finders.expired_leases(s, BATCH)),
        "sweep: unpublished queued jobs": rolled_back(
            lambda s: finders.unpublished(s, republish, BATCH)
        ),
        "sweep: overdue retries": rolled_back(
            lambda s: finders.overdue_retries(s, republish, BATCH)
        ),
        "sweep: stranded parents": rolled_back(lambda s: finders.stranded_parents(s, BATCH)),
        "sweep: retention (30 days, one batch, rolled back)": rolled_back(
            lambda s: finders.prune_ended(s, timedelta(days=30), BATCH)
        ),
        "list: first page": lambda: list_jobs(rt, client),
        "list: deep page (90% down)": lambda: list_jobs(rt, client, cursor=deep),
        "list: first page, status=failed": lambda: list_jobs(rt, client, status=Status.FAILED),
        "list: deep page, status=failed": lambda: list_jobs(
            rt, client, status=Status.FAILED, cursor=deep_failed
        ),
        "worker: claim": claim,
        "worker: heartbeat": heartbeat,
        "worker: finish": finish,
    }


def _big_client(rt: Runtime, stack: HaulStack) -> Client:
    from service.db.models import Client

    with rt.db.session() as session:
        found = session.get(Client, stack.client_id())
    assert found is not None
    return found


def _cursor(stack: HaulStack, client_id: uuid.UUID, status: Status | None) -> str:
    """The cursor of the page 90% of the way down the client's list."""
    where = "client_id = %s" + (" AND status = %s" if status else "")
    params: list[Any] = [client_id, *([status.value] if status else [])]
    total = stack.query(f"SELECT count(*) FROM jobs WHERE {where}", *params)[0][0]
    created, ident = stack.query(
        f"SELECT created_at, id FROM jobs WHERE {where} "
        "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
        *params,
        int(total * 0.9),
    )[0]
    return encode_cursor(Job(id=ident, client_id=client_id, url="", created_at=created))


def _http(stack: HaulStack, key: str) -> dict[str, list[float]]:
    """Milliseconds of GET /v1/jobs (first and deep page) through the API, keep-alive."""
    stack.start_api()
    deep = _cursor(stack, stack.client_id(), None)
    pages = {"GET /v1/jobs: first page": {}, "GET /v1/jobs: deep page": {"cursor": deep}}
    found: dict[str, list[float]] = {}
    with httpx.Client(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as http:
        for name, params in pages.items():

            def get(params: dict[str, str] = params) -> None:
                http.get("/v1/jobs", params=params).raise_for_status()

            found[name] = timed(get, HTTP_REPEATS)
    return found


def _verdict(measured: Measured) -> tuple[bool, str]:
    median = statistics.median(measured.times)
    seq = [s for p in measured.plans for s in p.seq_scans]
    if seq:
        return False, "; ".join(sorted(set(seq)))
    if median >= TARGET_MS:
        return False, f"{median - TARGET_MS:.1f} ms over"
    return True, ""


def _outcome(
    sizes: Sizes,
    rows: int,
    small_rows: int,
    big: dict[str, Measured],
    small: dict[str, Measured],
    http: dict[str, dict[str, list[float]]],
    generation: dict[str, float],
) -> Outcome:
    scenario = "4 table"
    baseline = f"same on {small_rows:,} rows"
    figures = []
    for name, measured in big.items():
        met, miss = _verdict(measured)
        value, base = Sample(tuple(measured.times)), Sample(tuple(small[name].times))
        figures.append(
            Figure(
                scenario,
                name,
                "ms",
                value,
                baseline,
                base,
                value.median / base.median,
                f"< {TARGET_MS:.0f} ms, no seq scan",
                None if sizes.smoke else met,
                miss,
            )
        )
    for name, times in http["table"].items():
        value, base = Sample(tuple(times)), Sample(tuple(http["tablesmall"][name]))
        figures.append(
            Figure(scenario, name, "ms", value, baseline, base, value.median / base.median)
        )
    method = (
        f"Tables of {rows:,} and {small_rows:,} job rows generated in SQL "
        f"({fmt(generation['table'])} s and {fmt(generation['tablesmall'])} s with their "
        "artifacts and `VACUUM ANALYZE`); see `bench/table_data.py` for their shape. "
        "Every operation calls haul's own function (`service.db.jobs`, `service.intake.jobs."
        "list_jobs`, `service.work.download`), with its session, pool checkout and commit "
        f"(sweeps: rolled back); {sizes.table_repeats} timed calls after 3 untimed ones, "
        "median (min–max). Claims take distinct queued jobs; heartbeat and finish act on "
        "claimed ones. Pages are 50 jobs of the client that owns half the table; the deep "
        "page starts 90% of the way down. The HTTP figures go through the API (auth, "
        f"JSON), {HTTP_REPEATS} requests each on one keep-alive connection.\n\n"
        "p95 on the big table: "
        + ", ".join(f"{name} {fmt(percentile(m.times, 95))} ms" for name, m in big.items())
        + "."
    )
    return Outcome(figures, [("method", method), ("plans", _plans(big, rows))])


def _plans(big: dict[str, Measured], rows: int) -> str:
    parts = [
        f"`EXPLAIN (ANALYZE, BUFFERS)` of every statement on the {rows:,}-row table, taken "
        "just before the statement ran (same transaction, savepoint rolled back).",
        "",
        "| operation | statement | scans | execution |",
        "| --- | --- | --- | --- |",
    ]
    for name, measured in big.items():
        for i, plan in enumerate(measured.plans, 1):
            scans = ", ".join(plan.scans) or "(none)"
            parts.append(f"| {name} | {i} | {scans} | {fmt(plan.execution_ms)} ms |")
    parts += ["", "<details><summary>Full plans</summary>", ""]
    for name, measured in big.items():
        for i, plan in enumerate(measured.plans, 1):
            parts += [f"**{name}, statement {i}**", "", "```sql", plan.sql, "```", "", "```"]
            parts += [plan.text, "```", ""]
    parts += ["</details>"]
    return "\n".join(parts)
