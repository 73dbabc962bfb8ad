"""What a job costs the database: the SQL statements and commits the worker fleet sent
per job, from the fleet's own counters (``haul_db_statements_total`` and
``haul_db_commits_total`` with ``process="worker"`` on its Prometheus endpoint).

The timed runs keep the endpoint off (it is off by default, and its files cost a
little), so this is one more batch on a worker started with it on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import haul_batch
from bench.procs import free_port, wait_for

if TYPE_CHECKING:
    from bench.stack import HaulStack


@dataclass(frozen=True)
class DbCost:
    jobs: int
    statements: float
    commits: float


def _scrape(url: str) -> dict[str, float] | None:
    """The worker counters and the messages in progress, or None while nobody answers."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return None
    found = {"busy": 0.0, "haul_db_statements_total": 0.0, "haul_db_commits_total": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in found and sample.labels.get("process") == "worker":
                found[sample.name] += sample.value
            elif sample.name == "haul_worker_messages_in_progress":
                found["busy"] += sample.value
    return found


def per_job(stack: HaulStack, key: str, urls: list[str]) -> DbCost:
    """Restart the fleet with its metrics on, run ``urls`` once, and divide its counts."""
    port = free_port()
    stack.stop("worker", kill=True)
    stack.env["HAUL_WORKER_METRICS_PORT"] = str(port)
    stack.env["HAUL_WORKER_METRICS_DIR"] = str(stack.root / "worker-metrics")
    stack.start_worker()
    url = f"http://127.0.0.1:{port}/metrics"
    before = wait_for(lambda: _scrape(url), timeout=60, what="the worker's metrics endpoint")
    haul_batch.run(stack, key, urls, timeout=600)

    def settled() -> dict[str, float] | None:
        # A message's counts are added as it ends, before it stops counting as busy.
        after = _scrape(url)
        return after if after is not None and after["busy"] == 0 else None

    after = wait_for(settled, timeout=60, what="the worker's last messages to end")
    jobs = len(urls)
    return DbCost(
        jobs,
        (after["haul_db_statements_total"] - before["haul_db_statements_total"]) / jobs,
        (after["haul_db_commits_total"] - before["haul_db_commits_total"]) / jobs,
    )
