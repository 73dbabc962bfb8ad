"""Submit a batch of URLs to a running haul and wait until every job has ended.

Timing comes from the rows themselves (the database's clock): from the first
job's ``created_at`` to the last one's ``finished_at``, so polling adds nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.loadgen import Target, burst
from bench.procs import wait_for

if TYPE_CHECKING:
    from bench.stack import HaulStack

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class BatchResult:
    wall: float
    job_ids: list[str]
    per_job: list[float]


def submit(
    stack: HaulStack, key: str, urls: list[str], options: dict[str, Any] | None = None
) -> list[str]:
    """POST every URL at once (16 connections); the job ids, in order."""
    target = Target(f"{stack.base_url}/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    bodies = [json.dumps({"url": u, **({"options": options} if options else {})}) for u in urls]
    answers = asyncio.run(burst(target, [b.encode() for b in bodies], connections=16))
    bad = [(status, body[:200]) for status, body in answers if status != 202]
    if bad:
        raise RuntimeError(f"{len(bad)} submissions failed, e.g. {bad[0]}")
    return [str(json.loads(body)["id"]) for _, body in answers]


def wait_ended(stack: HaulStack, job_ids: list[str], timeout: float) -> BatchResult:
    """Until every job is terminal; raises unless all succeeded."""

    def ended() -> bool:
        rows = stack.query(
            "SELECT count(*) FROM jobs WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)",
            job_ids,
            list(TERMINAL),
        )
        return bool(rows[0][0] == len(job_ids))

    wait_for(ended, timeout=timeout, what=f"{len(job_ids)} jobs to end", every=0.2)
    rows = stack.query(
        "SELECT status, error_message, created_at, finished_at FROM jobs "
        "WHERE id = ANY(%s::uuid[])",
        job_ids,
    )
    failed = [(s, e) for s, e, _, _ in rows if s != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(job_ids)} jobs did not succeed: {failed[:3]}")
    first = min(r[2] for r in rows)
    last = max(r[3] for r in rows)
    per_job = [(r[3] - r[2]).total_seconds() for r in rows]
    return BatchResult((last - first).total_seconds(), job_ids, per_job)


def run(
    stack: HaulStack,
    key: str,
    urls: list[str],
    *,
    timeout: float,
    options: dict[str, Any] | None = None,
) -> BatchResult:
    started = time.monotonic()
    ids = submit(stack, key, urls, options)
    return wait_ended(stack, ids, timeout=max(1.0, timeout - (time.monotonic() - started)))
