"""5. Engine ceiling: haul's claim/finish path against Dramatiq + RabbitMQ doing nothing.

Baseline: no-op messages drained by ``dramatiq bench.bare_worker``. haul: trivial
jobs through ``dramatiq bench.noop_actors``, which is haul's real worker with the
two yt-dlp calls replaced by no-ops, so each job still costs two messages (probe,
then download), two claims with attempt rows, the lease keeper, a tiny file hashed
and moved into storage, an artifact row and the finish. Both fleets have haul's
default processes × threads and prefetch; the queue is filled before the fleet
starts, and the rate is taken between 10% and 90% done (start-up and tail excluded).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from typing import TYPE_CHECKING

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from bench import infra
from bench.procs import cpu_delta, cpu_snapshot, pids_named, tree_cpu, wait_for
from bench.profile import record, summarise
from bench.report import Figure, Outcome
from bench.stack import PROCESSES, THREADS, Bare, HaulStack
from bench.stats import Sample, fmt
from service.dispatch import MAX_PRIORITY, Queue, publish
from service.domain.options import normalize
from service.settings import Settings

if TYPE_CHECKING:
    from bench.procs import Proc
    from bench.sizes import Sizes
    from bench.stack import Context

TITLE = "5. Engine ceiling"


class Drain:
    """CPU of the fleet, PostgreSQL and RabbitMQ while one batch drains."""

    def __init__(self, worker: Proc) -> None:
        self.worker = worker
        self.cpu: dict[str, float] = {}

    def __enter__(self) -> Drain:
        self._fleet = tree_cpu(self.worker.tree())
        self._postgres = cpu_snapshot(pids_named("postgres"))
        self._rabbit = cpu_snapshot(pids_named("beam.smp"))
        return self

    def __exit__(self, *exc: object) -> None:
        fleet = tree_cpu(self.worker.tree())
        self.cpu = {
            "worker (Python)": fleet[0] - self._fleet[0],
            "PostgreSQL": cpu_delta(self._postgres, cpu_snapshot(pids_named("postgres"))),
            "RabbitMQ": cpu_delta(self._rabbit, cpu_snapshot(pids_named("beam.smp"))),
        }


def _preload_broker() -> RabbitmqBroker:
    """Fills queues fast (no confirms) with messages declared as the fleets declare them."""
    return RabbitmqBroker(
        url=infra.BROKER_URL, confirm_delivery=False, max_priority=MAX_PRIORITY, middleware=[]
    )


def _window_rate(done_at: list[float]) -> float:
    """Items per second between the 10% and the 90% mark."""
    ordered = sorted(done_at)
    n = len(ordered)
    low, high = ordered[n // 10], ordered[(9 * n) // 10]
    return (0.8 * n) / (high - low) if high > low else float("nan")


def _bare_run(bare: Bare, n: int) -> tuple[float, dict[str, float]]:
    broker = _preload_broker()
    for _ in range(n):
        broker.enqueue(
            dramatiq.Message(
                queue_name=bare.queue,
                actor_name="noop",
                args=(str(uuid.uuid4()),),
                kwargs={},
                options={"broker_priority": 0},
            )
        )
    broker.close()
    worker = bare.start_worker()
    watch = infra.QueueWatch(bare.queue)
    seen: list[tuple[float, int]] = []
    try:
        with Drain(worker) as drain:
            while not seen or seen[-1][1] > 0:
                seen.append((time.perf_counter(), watch.depth()))
                time.sleep(0.01)
    finally:
        watch.close()
    bare.stop("worker", kill=True)
    return _depth_rate(seen, n), drain.cpu


def _depth_rate(seen: list[tuple[float, int]], n: int) -> float:
    """Messages per second while the queue fell from 90% to 10% of ``n`` (or, for a
    queue drained between two looks, from the first drop to empty)."""
    t_high, left_high = next((t, left) for t, left in seen if left <= 0.9 * n)
    t_low, left_low = next((t, left) for t, left in seen if left <= 0.1 * n)
    if t_low <= t_high:
        t_high, left_high = next((t, left) for t, left in seen if left < n)
        t_low, left_low = seen[-1]
    return (left_high - left_low) / (t_low - t_high) if t_low > t_high else float("nan")


def _haul_run(
    stack: HaulStack, client_id: uuid.UUID, n: int, profile_s: float = 0.0
) -> tuple[float, dict[str, float], str]:
    rows = stack.query(
        "INSERT INTO jobs (id, client_id, url, options, metadata, status, step, priority, info, "
        "attempts, max_attempts, published_at) "
        "SELECT gen_random_uuid(), %s, 'http://127.0.0.1:9/noop.mp4', %s::jsonb, '{}'::jsonb, "
        "'queued', 'probe', 0, '{}'::jsonb, 0, 4, now() FROM generate_series(1, %s) RETURNING id",
        client_id,
        json.dumps(normalize(None, None).model_dump(mode="json")),
        n,
    )
    ids = [uuid.UUID(str(r[0])) for r in rows]
    settings = Settings(_env_file=None, queue_prefix=stack.prefix, broker_url=infra.BROKER_URL)
    broker = _preload_broker()
    for job_id in ids:
        publish(broker, settings, Queue.PROBE, job_id)
    broker.close()
    worker = stack.start_worker("bench.noop_actors")
    spy = None
    if profile_s:
        spy_out = stack.root / "engine.spy.txt"
        spy = record(worker.pid, profile_s, spy_out)
    with Drain(worker) as drain:
        try:
            wait_for(
                lambda: stack.query(
                    "SELECT count(*) = %s FROM jobs WHERE id = ANY(%s) AND status = 'succeeded'",
                    n,
                    ids,
                )[0][0],
                timeout=60 + n / 10,
                what=f"{n} trivial jobs to succeed",
                every=0.2,
            )
        except TimeoutError as exc:
            raise RuntimeError(
                f"{exc}; the worker's log ends:\n{worker.read_log()[-3000:]}"
            ) from exc
    stack.stop("worker", kill=True)
    done = stack.query("SELECT extract(epoch FROM finished_at) FROM jobs WHERE id = ANY(%s)", ids)
    profile = ""
    if spy is not None:
        spy.wait(timeout=60)
        profile = summarise(stack.root / "engine.spy.txt").markdown(
            "the haul worker fleet (all processes) in an extra, unmeasured run"
        )
    return _window_rate([float(r[0]) for r in done]), drain.cpu, profile


def run(ctx: Context, sizes: Sizes) -> Outcome:
    bare = Bare(ctx, "enginebare")
    stack = HaulStack(ctx, "engine")
    bare_runs: list[tuple[float, dict[str, float]]] = []
    haul_runs: list[tuple[float, dict[str, float]]] = []
    try:
        stack.create_key()
        client_id = stack.client_id()
        for _ in range(sizes.runs):
            bare_runs.append(_bare_run(bare, sizes.engine_messages))
            rate, cpu, _ = _haul_run(stack, client_id, sizes.engine_jobs)
            haul_runs.append((rate, cpu))
        _, _, profile = _haul_run(stack, client_id, sizes.engine_jobs, sizes.profile_seconds)
    finally:
        bare.close()
        stack.close()
    return _outcome(sizes, bare_runs, haul_runs, profile)


def _outcome(
    sizes: Sizes,
    bare_runs: list[tuple[float, dict[str, float]]],
    haul_runs: list[tuple[float, dict[str, float]]],
    profile: str,
) -> Outcome:
    scenario = "5 engine"
    bare_rate = Sample(tuple(r for r, _ in bare_runs))
    jobs = Sample(tuple(r for r, _ in haul_runs))
    messages = Sample(tuple(2 * r for r, _ in haul_runs))
    figures = [
        Figure(
            scenario,
            "messages/s (2 per job)",
            "msg/s",
            messages,
            "bare no-op Dramatiq",
            bare_rate,
            messages.median / bare_rate.median,
        ),
        Figure(
            scenario,
            "trivial jobs/s",
            "jobs/s",
            jobs,
            "bare no-op Dramatiq (msg/s)",
            bare_rate,
            jobs.median / bare_rate.median,
        ),
    ]
    n_bare, n_haul = sizes.engine_messages, sizes.engine_jobs
    lines = ["| CPU (median run) | haul, per job | bare, per message |", "| --- | --- | --- |"]
    for part in haul_runs[0][1]:
        h = statistics.median(cpu[part] for _, cpu in haul_runs) * 1000 / n_haul
        b = statistics.median(cpu[part] for _, cpu in bare_runs) * 1000 / n_bare
        lines.append(f"| {part} | {fmt(h)} ms | {fmt(b)} ms |")
    method = (
        f"{n_bare:,} no-op messages (baseline) and {n_haul:,} trivial jobs (haul) per run, "
        f"{sizes.runs} run(s) each, interleaved; both fleets `dramatiq … --processes "
        f"{PROCESSES} --threads {THREADS}`, prefetch {THREADS}. The baseline's rate comes "
        "from the queue depth (polled every 10 ms), haul's from the jobs' `finished_at`. "
        "haul's job rows are inserted in SQL beforehand (the submit path is scenario 1).\n\n"
        "CPU over the whole drain (PostgreSQL and RabbitMQ: every server process of the "
        "machine, so other users' work counts too):\n\n" + "\n".join(lines)
    )
    return Outcome(figures, [("method", method), ("profile of the worker", profile)])
