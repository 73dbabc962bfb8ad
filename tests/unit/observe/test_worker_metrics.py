"""Worker metrics in prometheus-client's multiprocess mode: several processes write, one reads.

Each worker process here is a fresh interpreter, as Dramatiq's are: multiprocess mode is
chosen when prometheus_client is first imported, so it cannot be tried in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from service.observe import worker_metrics
from tests.support.paths import REPO
from tests.support.prom import Samples, samples


def _python(code: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _worker(directory: Path, *, stops: bool) -> subprocess.Popen[str]:
    """One worker process: boots, downloads twice and sweeps once, says so, then waits for its
    stdin to close and ends, cleanly (``stops``) or as if it crashed. Its engine sends 5 SQL
    statements in 2 commits before its first message ends and 3 in 1 before its second."""
    code = """
        import sys
        from pathlib import Path
        from service.db.engine import Counts
        from service.observe import worker_metrics as metrics
        metrics.start(Path(sys.argv[1]))
        metrics.threads_started(4)
        engine = Counts()
        for size, statements, commits in ((1000, 5, 2), (3000, 3, 1)):
            metrics.stored(size)
            metrics.attempt_finished("download", "succeeded", 2.5)
            for _ in range(statements):
                engine.statement()
            for _ in range(commits):
                engine.commit()
            metrics.database_work(engine)
        metrics.swept({"republished": 2, "pruned": 0})
        print("ready", flush=True)
        sys.stdin.read()
        if sys.argv[2] == "stops":
            metrics.stop()
    """
    worker = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(directory), "stops" if stops else "-"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    return worker


def _read(directory: Path) -> Samples:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return samples(generate_latest(registry).decode())


def test_the_server_adds_up_what_every_worker_process_observed(tmp_path: Path) -> None:
    # Given two worker processes of one run (booted side by side): one stopped cleanly, one died
    workers = [_worker(tmp_path, stops=True), _worker(tmp_path, stops=False)]
    for worker in workers:
        worker.communicate()
        assert worker.returncode == 0
    # When the run's server reads their files
    found = _read(tmp_path)
    # Then counters and histograms hold both processes' observations
    assert found[("haul_download_size_bytes_count", ())] == 4
    assert found[("haul_download_size_bytes_sum", ())] == 8000
    duration = (
        "haul_attempt_duration_seconds_count",
        (("outcome", "succeeded"), ("step", "download")),
    )
    assert found[duration] == 4
    assert found[("haul_swept_rows_total", (("kind", "republished"),))] == 4
    assert found[("haul_sweeps_total", ())] == 2
    # and each process's database work is added once, not re-added at each message's end
    assert found[("haul_db_statements_total", (("process", "worker"),))] == 16
    assert found[("haul_db_commits_total", (("process", "worker"),))] == 6
    # and a live gauge forgets the process that stopped cleanly (the dead one's stays:
    # Dramatiq ends the whole run when a worker process dies)
    assert found[("haul_worker_threads", ())] == 4


def test_importing_the_actors_leaves_prometheus_client_unimported() -> None:
    # Given a worker with metrics on: multiprocess mode depends on the import order
    out = _python(
        """
        import os, sys
        os.environ["HAUL_WORKER_METRICS_PORT"] = "9"
        import actors
        print("prometheus_client" in sys.modules, type(actors.broker.middleware[-2]).__name__)
        """
    )
    # Then Dramatiq's process boot, not an import, is what loads prometheus_client
    assert out.split() == ["False", "WorkerMetrics"]


def test_metrics_stay_off_when_prometheus_client_was_imported_first(tmp_path: Path) -> None:
    # Given a process that imported prometheus_client before its metrics were set up
    out = _python(
        """
        import sys
        from pathlib import Path
        import prometheus_client
        from service.observe import worker_metrics as metrics
        metrics.start(Path(sys.argv[1]))
        metrics.stored(1000)
        print(metrics._metrics is None)
        """,
        str(tmp_path),
    )
    # Then it records nothing rather than numbers its server would never see
    assert out.strip().endswith("True")
    assert _read(tmp_path) == {}


def test_a_booting_worker_removes_files_of_ended_processes_and_of_its_pid(tmp_path: Path) -> None:
    # Given files of a process that ended, of a live one, and of an earlier holder of this pid
    ended = _python("import os; print(os.getpid())").strip()
    live, mine = os.getppid(), os.getpid()
    for pid in (ended, live, mine):
        (tmp_path / f"counter_{pid}.db").write_bytes(b"")
    # When this process boots as a worker there
    worker_metrics._remove_stale_files(tmp_path)
    # Then only the live process's file is left
    assert [p.name for p in tmp_path.iterdir()] == [f"counter_{live}.db"]
