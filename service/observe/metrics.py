"""Prometheus metrics of the API: counted from the rows and the queues at scrape time, plus its own.

Jobs by state, attempts by outcome and error class, and dead letters are read from
PostgreSQL when Prometheus scrapes, so any API process reports the whole fleet's
truth and nothing is lost when a worker dies; queue depths are asked of RabbitMQ
the same way. Request counts and latencies come from Litestar's Prometheus
middleware. What only a worker sees (durations, sizes, sweeps) is served by the
workers (service/observe/worker_metrics.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from service.db import sites as site_rows
from service.db import stats
from service.errors import ServiceUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.metrics_core import Metric

    from service.db.engine import Database
    from service.db.models import SiteBreaker
    from service.observe.queue_depths import QueueDepths

log = structlog.get_logger(__name__)

SUBMITTED = Counter("haul_jobs_submitted", "Jobs accepted by this API process (202).")


class DatabaseWork(Collector):
    """What this process asked of PostgreSQL: statements sent and transactions committed
    (the engine counts them; see ``service/db/engine.py``), read before the rows below."""

    def __init__(self) -> None:
        self.db: Database | None = None

    def collect(self) -> Iterator[Metric]:
        if self.db is None:
            return
        statements = CounterMetricFamily(
            "haul_db_statements",
            "SQL statements this process sent to PostgreSQL.",
            labels=["process"],
        )
        commits = CounterMetricFamily(
            "haul_db_commits", "Transactions this process committed.", labels=["process"]
        )
        statements.add_metric(["api"], self.db.counts.statements)
        commits.add_metric(["api"], self.db.counts.commits)
        yield statements
        yield commits


class RowStats(Collector):
    """Reads the job tables on each scrape; reports nothing when the database is down."""

    def __init__(self) -> None:
        self.db: Database | None = None
        self.keyed = False

    def collect(self) -> Iterator[Metric]:
        if self.db is None:
            return
        try:
            with self.db.session() as session:
                jobs = stats.jobs_by_state(session)
                held = stats.held_by_reason(session)
                attempts = stats.attempts_by_outcome(session)
                dead = stats.dead_letters_by_class(session)
                deliveries = stats.deliveries_by_status(session)
                subs = stats.subscriptions_by_state(session)
                entries = stats.subscription_entries_by_state(session)
                overdue = stats.subscriptions_overdue_s(session)
                breakers = site_rows.breakers(session)
                cooling = site_rows.cooling_counts(session, self.keyed)
        except Exception:
            log.warning("metrics: could not read the job tables", exc_info=True)
            return
        by_state = GaugeMetricFamily(
            "haul_jobs",
            "Jobs by status and step (probe or download queue).",
            labels=["status", "step"],
        )
        for status, step, n in jobs:
            by_state.add_metric([status, step], n)
        yield by_state
        held_back = GaugeMetricFamily(
            "haul_jobs_held",
            "Waiting jobs held back, by step and reason (queue_paused, client_paused, "
            "queue_full, site_full, client_busy, client_full, site_cooling, site_paced); they "
            "are counted in haul_jobs too.",
            labels=["step", "reason"],
        )
        for step, reason, n in held:
            held_back.add_metric([step, reason], n)
        yield held_back
        finished = CounterMetricFamily(
            "haul_attempts",
            "Finished attempts by step, outcome (succeeded, retry, failed, abandoned, handed_back) "
            "and error class.",
            labels=["step", "outcome", "error_class"],
        )
        for step, outcome, error_class, n in attempts:
            finished.add_metric([step, outcome, error_class], n)
        yield finished
        dead_letters = CounterMetricFamily(
            "haul_dead_letters",
            "Jobs whose message went to .XQ, by error class.",
            labels=["error_class"],
        )
        for error_class, n in dead:
            dead_letters.add_metric([error_class], n)
        yield dead_letters
        webhooks = GaugeMetricFamily(
            "haul_webhook_deliveries",
            "Webhook deliveries by status (pending, delivered, failed).",
            labels=["status"],
        )
        for status, n in deliveries:
            webhooks.add_metric([status], n)
        yield webhooks
        yield from _subscription_metrics(subs, entries, overdue)
        yield from _breaker_metrics(breakers, cooling)


def _breaker_metrics(
    breakers: list[SiteBreaker], cooling: dict[tuple[str, str], int]
) -> Iterator[Metric]:
    """Breakers that are open, half-open or counting throttles (a closed, clean one is absent)."""
    labels = ["site", "identity"]
    state = GaugeMetricFamily(
        "haul_site_breaker_state",
        "1 for the state a site's breaker is in for one identity (closed, open, half_open).",
        labels=[*labels, "state"],
    )
    failures = GaugeMetricFamily(
        "haul_site_breaker_failures", "Throttled attempts in a row on the site.", labels=labels
    )
    opens = GaugeMetricFamily(
        "haul_site_breaker_opens", "Openings since the site's last success.", labels=labels
    )
    retry_at = GaugeMetricFamily(
        "haul_site_breaker_retry_at_seconds",
        "When an open breaker lets one job through (Unix time).",
        labels=labels,
    )
    held = GaugeMetricFamily(
        "haul_site_breaker_cooling_jobs", "Jobs held site_cooling behind it.", labels=labels
    )
    for b in breakers:
        key = [b.site, b.identity]
        state.add_metric([*key, b.state], 1)
        failures.add_metric(key, b.failures)
        opens.add_metric(key, b.opens)
        if b.retry_at is not None:
            retry_at.add_metric(key, b.retry_at.timestamp())
        held.add_metric(key, cooling.get((b.site, b.identity), 0))
    yield from (state, failures, opens, retry_at, held)


def _subscription_metrics(
    subs: list[tuple[str, int]], entries: list[tuple[str, int]], overdue: float
) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        "haul_subscriptions", "Subscriptions by state (ok, failing, paused).", labels=["state"]
    )
    for state, n in subs:
        by_state.add_metric([state], n)
    yield by_state
    found = GaugeMetricFamily(
        "haul_subscription_entries",
        "Entries the checks found, by what became of them (queued, pending, filtered, "
        "before_backfill, duplicate).",
        labels=["state"],
    )
    for state, n in entries:
        found.add_metric([state], n)
    yield found
    yield GaugeMetricFamily(
        "haul_subscriptions_overdue_seconds",
        "How long the most overdue unpaused subscription has waited past its due time "
        "(a scheduler that is down, or no worker on the subscriptions queue).",
        value=overdue,
    )


class QueueStats(Collector):
    """Asks RabbitMQ for the queue depths on each scrape; reports nothing if it does not answer."""

    def __init__(self) -> None:
        self.queues: QueueDepths | None = None

    def collect(self) -> Iterator[Metric]:
        if self.queues is None:
            return
        try:
            depths = self.queues.read()
        except ServiceUnavailable as exc:
            log.warning("metrics: could not read the queue depths", error=exc.message)
            return
        ready = GaugeMetricFamily(
            "haul_queue_messages_ready",
            "Messages waiting in each queue for a consumer (.DQ: retries waiting out their "
            "backoff; .XQ: dead letters). Taken but unacknowledged messages are not included.",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "haul_queue_consumers", "Consumers attached to each queue.", labels=["queue"]
        )
        for name, depth in depths.items():
            if depth is not None:
                ready.add_metric([name], depth.ready)
                consumers.add_metric([name], depth.consumers)
        yield ready
        yield consumers


DATABASE_WORK = DatabaseWork()
REGISTRY.register(DATABASE_WORK)
ROW_STATS = RowStats()
REGISTRY.register(ROW_STATS)
QUEUE_STATS = QueueStats()
REGISTRY.register(QUEUE_STATS)


def watch(db: Database, queues: QueueDepths | None = None, *, keyed: bool = False) -> None:
    """Report the rows of this database and these queues (the API app calls it once built);
    ``keyed``: cookies can be opened (``HAUL_SECRET_KEY``), which names jobs' identities."""
    DATABASE_WORK.db = db
    ROW_STATS.db = db
    ROW_STATS.keyed = keyed
    QUEUE_STATS.queues = queues
