"""6. Idle cost: memory of an API process and a worker fleet that have nothing to do.

Each is started, warmed with a little work (so lazily loaded code is counted, as it
would be in a service that has run for a while), then left alone for a moment
before its memory is read. Baselines: the bare Litestar endpoint and the bare
no-op Dramatiq fleet of scenarios 1 and 5. RSS counts pages shared between forked
worker processes once per process; PSS divides them fairly, so the fleet's total
is given as PSS.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx

from bench.procs import pss_mib, rss_mib
from bench.report import Figure, Outcome
from bench.stack import PROCESSES, THREADS, Bare, HaulStack
from bench.stats import Sample

if TYPE_CHECKING:
    from bench.procs import Proc
    from bench.sizes import Sizes
    from bench.stack import Context

TITLE = "6. Idle cost"
SETTLE_S = 5.0


def _memory(proc: Proc) -> tuple[float, float, list[float]]:
    """(RSS of the main process, PSS of the whole tree, RSS of each process)."""
    tree = proc.tree()
    return rss_mib(proc.pid), sum(pss_mib(p) for p in tree), [rss_mib(p) for p in tree]


def run(ctx: Context, sizes: Sizes) -> Outcome:
    stack = HaulStack(ctx, "idle")
    bare = Bare(ctx, "idlebare")
    try:
        key = stack.create_key()
        stack.start_api()
        bare.start_api()
        body = {"url": "http://127.0.0.1:9/media/clip.mp4"}
        with httpx.Client(timeout=10) as http:
            for _ in range(20):
                auth = {"Authorization": f"Bearer {key}"}
                http.post(f"{stack.base_url}/v1/jobs", json=body, headers=auth).raise_for_status()
                http.get(f"{stack.base_url}/v1/jobs", headers=auth).raise_for_status()
                http.post(f"{bare.base_url}/jobs", json=body).raise_for_status()
        # The submitted jobs give the worker a little to do (they fail fast: nothing on :9).
        worker = stack.start_worker()
        bare_worker = bare.start_worker()
        time.sleep(1.0 if sizes.smoke else SETTLE_S)
        api, bare_api = _memory(stack.procs["api"]), _memory(bare.procs["api"])
        fleet, bare_fleet = _memory(worker), _memory(bare_worker)
    finally:
        stack.close()
        bare.close()
    scenario = "6 idle"
    figures = [
        Figure(
            scenario,
            "API process RSS",
            "MiB",
            Sample.of(api[0]),
            "bare Litestar endpoint",
            Sample.of(bare_api[0]),
            api[0] / bare_api[0],
        ),
        Figure(
            scenario,
            f"worker fleet PSS ({PROCESSES} processes + main)",
            "MiB",
            Sample.of(fleet[1]),
            "bare no-op Dramatiq fleet",
            Sample.of(bare_fleet[1]),
            fleet[1] / bare_fleet[1],
        ),
        Figure(
            scenario,
            "largest worker process RSS",
            "MiB",
            Sample.of(max(fleet[2])),
            "bare no-op Dramatiq",
            Sample.of(max(bare_fleet[2])),
            max(fleet[2]) / max(bare_fleet[2]),
        ),
    ]
    method = (
        "One uvicorn process per API; `dramatiq … --processes "
        f"{PROCESSES} --threads {THREADS}` per fleet. Warm-up: 20 submissions and 20 list "
        "requests to haul's API (20 posts to the bare one); haul's fleet then handled those "
        "20 jobs (each probe fails and is retried: nothing listens on the port they "
        "name), the bare fleet started idle. Memory read after a few idle seconds. "
        "RSS of every process of "
        f"haul's fleet: {', '.join(f'{r:.0f}' for r in fleet[2])} MiB; the bare fleet's: "
        f"{', '.join(f'{r:.0f}' for r in bare_fleet[2])} MiB."
    )
    return Outcome(figures, [("method", method)])
