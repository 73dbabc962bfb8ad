"""1. The submit path: ``POST /v1/jobs`` against a bare Litestar endpoint that only publishes.

Both run under one uvicorn process with the same settings; no worker consumes, so
the measurement is the API alone. Two loads per run and side: a closed loop of
``connections`` clients for the throughput at saturation, and an open loop at a
fixed 200 requests/s for the latency a user sees at that rate. Then one more closed
loop on haul, between reads of its ``/metrics``, counts the SQL statements and commits
per submission (the engine's counters over the jobs it accepted, the batched marks of
their publishes included).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

from bench.procs import REPO
from bench.profile import record, summarise
from bench.report import Figure, Outcome
from bench.stack import Bare, HaulStack
from bench.stats import Sample, fmt

if TYPE_CHECKING:
    from bench.sizes import Sizes
    from bench.stack import Context

TITLE = "1. Submit path"
BODY = {"url": "http://127.0.0.1:9/media/clip.mp4"}
#: The issue's targets: p99 at the fixed rate within 3× the bare endpoint's, and half
#: its throughput; a plain submission in at most 3 statements and 1 commit.
P99_RATIO_TARGET = 3.0
RATIO_TARGET = 0.5
STATEMENTS_TARGET = 3.0
COMMITS_TARGET = 1.0
#: Counters read from haul's ``/metrics`` (per API process).
COUNTERS = ("haul_db_statements", "haul_db_commits", "haul_jobs_submitted")


def load(url: str, headers: dict[str, str], **config: Any) -> dict[str, Any]:
    """One load run in a process of its own (so it never shares the bench's GIL)."""
    spec = json.dumps({"url": url, "headers": headers, "body": BODY, **config})
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", spec],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed on {url}:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    if result["errors"]:
        raise RuntimeError(f"{url}: {result['errors']} failed requests: {result['statuses']}")
    return result


def run(ctx: Context, sizes: Sizes) -> Outcome:
    haul = HaulStack(ctx, "submit")
    bare = Bare(ctx, "submitbare")
    try:
        haul.start_api()
        key = haul.create_key()
        bare.start_api()
        sides = {
            "haul": (f"{haul.base_url}/v1/jobs", {"Authorization": f"Bearer {key}"}),
            "bare": (f"{bare.base_url}/jobs", {}),
        }
        closed = {"mode": "closed", "connections": sizes.submit_connections}
        opened = {"mode": "open", "rate": sizes.submit_rate, "duration": sizes.submit_seconds}
        for url, headers in sides.values():  # warm-up, excluded
            load(url, headers, **closed, duration=sizes.submit_warmup_s)
        saturated: dict[str, list[dict[str, Any]]] = {"haul": [], "bare": []}
        fixed: dict[str, list[dict[str, Any]]] = {"haul": [], "bare": []}
        for _ in range(sizes.runs):
            for side, (url, headers) in sides.items():
                saturated[side].append(load(url, headers, **closed, duration=sizes.submit_seconds))
                fixed[side].append(load(url, headers, **opened))
        cost = _cost(haul.base_url, sides["haul"], closed, sizes.submit_seconds)
        profile_out = haul.root / "api.spy.txt"
        spy = record(haul.procs["api"].pid, sizes.profile_seconds, profile_out)
        url, headers = sides["haul"]
        load(url, headers, **closed, duration=sizes.profile_seconds)
        if spy is not None:
            spy.wait(timeout=60)
        profile = summarise(profile_out)
    finally:
        haul.close()
        bare.close()
    return _outcome(sizes, saturated, fixed, cost, profile.markdown("the haul API process"))


def _counters(base_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    found = {name: 0.0 for name in COUNTERS}
    for family in text_string_to_metric_families(text):
        if family.name in found:
            found[family.name] = sum(s.value for s in family.samples if s.name.endswith("_total"))
    return found


def _cost(
    base_url: str, side: tuple[str, dict[str, str]], closed: dict[str, Any], seconds: float
) -> dict[str, float]:
    """SQL statements and commits per accepted submission, over one closed-loop run.

    A scrape reads the counters before it reads the job tables for its other metrics,
    so the difference of two scrapes holds the first one's table reads: the scrape that
    follows at once measures them (nothing else runs then), and they are taken off.
    """
    before = _counters(base_url)
    load(*side, **closed, duration=seconds)
    time.sleep(1.0)  # the batched publish marks land
    after = _counters(base_url)
    scrape = _counters(base_url)
    submitted = after["haul_jobs_submitted"] - before["haul_jobs_submitted"]
    if submitted <= 0:
        raise RuntimeError("no submission was accepted while counting")

    def per_submit(name: str) -> float:
        own = scrape[name] - after[name]
        return (after[name] - before[name] - own) / submitted

    return {
        "statements": per_submit("haul_db_statements"),
        "commits": per_submit("haul_db_commits"),
        "submitted": submitted,
    }


def _sample(runs: list[dict[str, Any]], key: str) -> Sample:
    return Sample(tuple(float(r[key]) for r in runs))


def _outcome(
    sizes: Sizes,
    saturated: dict[str, list[dict[str, Any]]],
    fixed: dict[str, list[dict[str, Any]]],
    cost: dict[str, float],
    profile: str,
) -> Outcome:
    scenario = "1 submit"
    haul_rps, bare_rps = (
        _sample(saturated["haul"], "throughput"),
        _sample(saturated["bare"], "throughput"),
    )
    ratio = haul_rps.median / bare_rps.median
    p99 = _sample(fixed["haul"], "p99_ms")
    rate = sizes.submit_rate
    p50_saturated = (_sample(saturated["haul"], "p50_ms"), _sample(saturated["bare"], "p50_ms"))
    p50_fixed = (_sample(fixed["haul"], "p50_ms"), _sample(fixed["bare"], "p50_ms"))
    p99_ratio = p99.median / _sample(fixed["bare"], "p99_ms").median
    figures = [
        Figure(
            scenario,
            f"throughput, {sizes.submit_connections} connections",
            "req/s",
            haul_rps,
            "bare endpoint",
            bare_rps,
            ratio,
            f"≥ {RATIO_TARGET}× bare",
            None if sizes.smoke else ratio >= RATIO_TARGET,
            f"{ratio / RATIO_TARGET:.0%} of the target ratio",
        ),
        Figure(
            scenario,
            f"p50 latency, {sizes.submit_connections} connections",
            "ms",
            p50_saturated[0],
            "bare endpoint",
            p50_saturated[1],
            p50_saturated[0].median / p50_saturated[1].median,
        ),
        Figure(
            scenario,
            f"p50 latency at {rate} req/s",
            "ms",
            p50_fixed[0],
            "bare endpoint",
            p50_fixed[1],
            p50_fixed[0].median / p50_fixed[1].median,
        ),
        Figure(
            scenario,
            f"p99 latency at {rate} req/s",
            "ms",
            p99,
            "bare endpoint",
            _sample(fixed["bare"], "p99_ms"),
            p99_ratio,
            f"≤ {P99_RATIO_TARGET:.0f}× bare",
            None if sizes.smoke else p99_ratio <= P99_RATIO_TARGET,
            f"{p99_ratio / P99_RATIO_TARGET:.1f}× the target ratio",
        ),
        Figure(
            scenario,
            "SQL statements per submit",
            "statements",
            Sample.of(cost["statements"]),
            target=f"≤ {STATEMENTS_TARGET:.0f}",
            met=None if sizes.smoke else cost["statements"] <= STATEMENTS_TARGET,
            digits=2,
        ),
        Figure(
            scenario,
            "commits per submit",
            "commits",
            Sample.of(cost["commits"]),
            target=f"≤ {COMMITS_TARGET:.0f} (+ batched publish marks)",
            met=None if sizes.smoke else cost["commits"] <= COMMITS_TARGET + 0.1,
            digits=2,
        ),
    ]
    method = (
        f"One uvicorn process per side. Load from `bench/loadgen.py` (asyncio, keep-alive) "
        f"in a process of its own. Warm-up: {sizes.submit_warmup_s:.0f} s of closed-loop load "
        f"per side, excluded. Each of {sizes.runs} run(s) per side: {sizes.submit_seconds:.0f} s "
        f"closed loop with {sizes.submit_connections} connections (throughput, latency at "
        f"saturation), then {sizes.submit_seconds:.0f} s open loop at {rate} req/s (latency "
        "from each request's scheduled start). Every request is the same JSON body; haul's "
        "carries an API key. No worker consumes during the runs. Statements and commits "
        f"per submit: {fmt(cost['statements'], 2)} and {fmt(cost['commits'], 2)} over "
        f"{cost['submitted']:.0f} submissions of one more closed-loop run, from the API's "
        "`haul_db_statements_total` and `haul_db_commits_total` (the publish marks, written "
        "in batches, included)."
    )
    return Outcome(figures, [("method", method), ("profile of the API under load", profile)])
