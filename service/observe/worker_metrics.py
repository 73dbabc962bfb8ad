"""What the worker processes observe, for Prometheus: first bytes, attempt times, sizes,
sweeps, and subscription checks (outcomes, entries found, lag after the due time).

These are observations (how long, how big), so the process that makes them keeps
them; counts of states and outcomes are read from the rows instead (service/observe/metrics.py).
One worker host (``dramatiq actors --processes N``) is several processes: each writes
its values to files of its own in a directory of the run, and one process of the run
serves their sum (prometheus-client's multiprocess mode; actors/metrics.py wires it).

prometheus-client picks that mode when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``, so nothing here imports it before :func:`start` has set
the variable. Until then (in the API, or in a worker without metrics) every
observation is a no-op.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from prometheus_client import Counter, Gauge, Histogram

    from service.db.engine import Counts
    from service.domain.states import AttemptOutcome
    from service.media.download import Progress
    from service.settings import Settings

log = structlog.get_logger(__name__)

#: Seconds from yt-dlp starting a download to its first byte: extraction plus the site's answer.
FIRST_BYTE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: Seconds of one attempt, from its claim to its outcome; downloads may take an hour.
ATTEMPT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
#: Bytes of one stored file: 100 kB to 10 GB.
SIZE_BUCKETS = (1e5, 1e6, 1e7, 1e8, 5e8, 1e9, 4e9, 1e10)
#: Seconds from a subscription falling due to its check's outcome: the tick runs each
#: minute, so a minute or two is normal; more means a scheduler or worker is missing.
LAG_BUCKETS = (1, 5, 15, 30, 60, 90, 120, 300, 600, 1800, 3600, 21600)


@dataclass(frozen=True)
class _Metrics:
    directory: Path
    first_byte: Histogram
    attempts: Histogram
    sizes: Histogram
    sweeps: Counter
    swept: Counter
    last_sweep: Gauge
    busy: Gauge
    threads: Gauge
    checks: Counter
    entries_found: Counter
    check_lag: Histogram
    statements: Counter
    commits: Counter


_metrics: _Metrics | None = None
#: This process's engine counts as last added to the counters: each call adds the difference.
_counted = (0, 0)


def run_directory(settings: Settings) -> Path:
    """The metric files of this ``dramatiq`` run: its main process is the parent of
    every worker process and of the server, so they all name the same directory."""
    return settings.worker_metrics_dir / str(os.getppid())


def start(directory: Path) -> None:
    """Record this worker process's metrics in ``directory``; call once, as it boots."""
    global _metrics
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_files(directory)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    import prometheus_client as prom
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        # Values would stay in this process, and the server would never see them.
        log.error("worker metrics off: prometheus_client was imported before they were set up")
        return
    _metrics = _Metrics(
        directory=directory,
        first_byte=prom.Histogram(
            "haul_download_first_byte_seconds",
            "Seconds from yt-dlp starting a download to its first byte of media.",
            buckets=FIRST_BYTE_BUCKETS,
        ),
        attempts=prom.Histogram(
            "haul_attempt_duration_seconds",
            "Seconds of each attempt a worker finished, from claim to outcome.",
            ["step", "outcome"],
            buckets=ATTEMPT_BUCKETS,
        ),
        sizes=prom.Histogram(
            "haul_download_size_bytes",
            "Size of each file a download stored.",
            buckets=SIZE_BUCKETS,
        ),
        sweeps=prom.Counter("haul_sweeps", "Sweep runs that completed."),
        swept=prom.Counter(
            "haul_swept_rows",
            "What the sweeps repaired, by kind (requeued, failed, republished, parents_closed, "
            "pruned, callbacks_republished, released, keys_pruned, orphan_files, "
            "orphan_workdirs).",
            ["kind"],
        ),
        last_sweep=prom.Gauge(
            "haul_sweep_last_success_timestamp_seconds",
            "Unix time when the last sweep run completed on this worker host.",
            multiprocess_mode="max",
        ),
        busy=prom.Gauge(
            "haul_worker_messages_in_progress",
            "Messages being handled right now, by actor.",
            ["actor"],
            multiprocess_mode="livesum",
        ),
        threads=prom.Gauge(
            "haul_worker_threads",
            "Worker threads of the live worker processes: the most messages handled at once.",
            multiprocess_mode="livesum",
        ),
        checks=prom.Counter(
            "haul_subscription_checks",
            "Subscription checks that recorded an outcome, by outcome (ok, failed).",
            ["outcome"],
        ),
        entries_found=prom.Counter(
            "haul_subscription_entries_found",
            "Entries the subscription checks recorded for the first time.",
        ),
        check_lag=prom.Histogram(
            "haul_subscription_check_lag_seconds",
            "Seconds from a subscription falling due (or a check asked for) to its check's "
            "outcome being recorded.",
            buckets=LAG_BUCKETS,
        ),
        # The API's /metrics reports the same two names with process="api".
        statements=prom.Counter(
            "haul_db_statements",
            "SQL statements this process sent to PostgreSQL.",
            ["process"],
        ),
        commits=prom.Counter(
            "haul_db_commits", "Transactions this process committed.", ["process"]
        ),
    )


def stop() -> None:
    """This worker process is going away: drop its live gauges (busy messages, threads)."""
    if _metrics is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid(), str(_metrics.directory))  # type: ignore[no-untyped-call]


def timing_first_byte(on_progress: Callable[[Progress], None]) -> Callable[[Progress], None]:
    """Wrap a download's progress callback so that its first byte is timed from now."""
    started = time.monotonic()
    seen = False

    def observed(progress: Progress) -> None:
        nonlocal seen
        if not seen and progress.bytes_done > 0:
            seen = True
            if _metrics is not None:
                _metrics.first_byte.observe(time.monotonic() - started)
        on_progress(progress)

    return observed


def attempt_finished(step: str, outcome: AttemptOutcome, seconds: float) -> None:
    if _metrics is not None:
        _metrics.attempts.labels(step, outcome).observe(seconds)


def stored(size: int) -> None:
    if _metrics is not None:
        _metrics.sizes.observe(size)


def swept(repaired: Mapping[str, int]) -> None:
    """One sweep run completed; ``repaired`` says how many rows each part of it moved."""
    if _metrics is None:
        return
    _metrics.sweeps.inc()
    for kind, n in repaired.items():
        _metrics.swept.labels(kind).inc(n)
    _metrics.last_sweep.set_to_current_time()


def subscription_checked(*, ok: bool, new: int, lag_s: float | None) -> None:
    """One check recorded its outcome: ``new`` entries first seen, ``lag_s`` after it fell due."""
    if _metrics is None:
        return
    _metrics.checks.labels("ok" if ok else "failed").inc()
    _metrics.entries_found.inc(new)
    if lag_s is not None:
        _metrics.check_lag.observe(lag_s)


def message_started(actor: str) -> None:
    if _metrics is not None:
        _metrics.busy.labels(actor).inc()


def message_done(actor: str) -> None:
    if _metrics is not None:
        _metrics.busy.labels(actor).dec()


def threads_started(n: int) -> None:
    if _metrics is not None:
        _metrics.threads.inc(n)


def serve() -> int:
    """The run's metrics endpoint: a Dramatiq fork process, one per ``dramatiq`` run.

    It adds up the files of every process of the run, live or ended; a counter
    therefore keeps what an ended process counted until the run ends.
    """
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    from service.logging import configure_logging
    from service.settings import get_settings

    settings = get_settings()
    configure_logging(settings)
    directory = run_directory(settings)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_ended_runs(settings.worker_metrics_dir)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    host, port = settings.worker_metrics_host, settings.worker_metrics_port or 0
    try:
        _, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("worker metrics: cannot listen", host=host, port=port, error=str(exc))
        return 1
    log.info("worker metrics served", url=f"http://{host}:{port}/metrics", directory=str(directory))
    thread.join()
    return 0


def _remove_stale_files(directory: Path) -> None:
    """Files of ended processes, and of an earlier process with this pid (pids are reused)."""
    for path in directory.glob("*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            path.unlink(missing_ok=True)


def _remove_ended_runs(root: Path) -> None:
    """Directories of ``dramatiq`` runs whose main process is gone."""
    for run in root.iterdir():
        if run.is_dir() and run.name.isdigit() and not _alive(int(run.name)):
            shutil.rmtree(run, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def database_work(counts: Counts) -> None:
    """Add what this process's engine sent since the last call (statements, commits): read
    as a message ends, so the worker's database cost per job can be scraped, not guessed."""
    global _counted
    if _metrics is None:
        return
    now = (counts.statements, counts.commits)
    _metrics.statements.labels("worker").inc(now[0] - _counted[0])
    _metrics.commits.labels("worker").inc(now[1] - _counted[1])
    _counted = now
