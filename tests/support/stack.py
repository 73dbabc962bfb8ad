"""A running haul for end-to-end tests, as processes: the API (uvicorn), workers
(`dramatiq actors`) and schedulers (`periodiq actors`), driven the way an operator and
a client would (the `haul` command, HTTP), plus what must hold over the whole table.

The fixture that starts one per test module is in tests/e2e/conftest.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support.network import free_port
from tests.support.paths import REPO
from tests.support.postgres import conninfo
from tests.support.waiting import wait_for

BIN = Path(sys.executable).parent
TERMINAL = {"succeeded", "failed", "cancelled"}
_READY = "Worker process is ready"


def haul(env: dict[str, str], *args: str) -> str:
    """`haul ARGS` as an operator runs it; what it printed on stdout."""
    return subprocess.run(
        [str(BIN / "haul"), *args], env=env, cwd=REPO, check=True, capture_output=True, text=True
    ).stdout


def create_client(env: dict[str, str], name: str, *flags: str) -> tuple[str, str]:
    """`haul clients create NAME`, as an operator runs it: the key on stdout's first line,
    the webhook signing secret on its second, nothing else."""
    out = haul(env, "clients", "create", name, *flags)
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0].startswith("haul_") and lines[1].startswith("whsec_"), out
    return lines[0], lines[1]


def create_key(env: dict[str, str], name: str) -> str:
    """The API key of a new client (see :func:`create_client`)."""
    return create_client(env, name)[0]


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        # SIGTERM goes to the main process only, as `kill PID` or `docker stop` sends it:
        # Dramatiq relays it to its workers, and a second one would mean "kill now".
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Stack:
    base_url: str
    key: str
    storage: Path
    temp: Path
    queue_prefix: str
    logs: Path
    env: dict[str, str]
    database: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: How many times each worker had booted before its latest start (its log is appended).
    boots: dict[str, int] = field(default_factory=dict)
    #: Each worker's Prometheus endpoint port (a free one per start).
    metrics_ports: dict[str, int] = field(default_factory=dict)

    def create_key(self, name: str) -> str:
        return create_key(self.env, name)

    def create_client(self, name: str, *flags: str) -> tuple[str, str]:
        """A new client's API key and webhook signing secret."""
        return create_client(self.env, name, *flags)

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key or self.key}"},
            timeout=10,
        )

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.processes[name] = _start(cmd, env or self.env, self.logs / f"{name}.log")

    def start_worker(
        self,
        name: str = "worker",
        processes: int = 1,
        *,
        queues: list[str] | None = None,
        dramatiq: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`dramatiq actors`, 4 threads per process, serving its metrics on a port of its own;
        on ``queues`` only when given (``-Q``, as `just worker` and `just deliveries` do);
        another environment's ``dramatiq`` script and ``env`` added when given (another
        worker host)."""
        self.boots[name] = self.log(name).count(_READY)
        self.metrics_ports[name] = free_port()
        env = {**self.env, **(env or {}), "HAUL_WORKER_METRICS_PORT": str(self.metrics_ports[name])}
        cmd = ["actors", "--processes", str(processes), "--threads", "4"]
        if queues is not None:
            assert queues, "`-Q` without names would consume every queue"
            cmd += ["-Q", *queues]
        self.start(name, [str(dramatiq or BIN / "dramatiq"), *cmd], env)

    def queues(self, *args: str) -> list[str]:
        """`haul queues ARGS` as the Justfile runs it: the names for ``-Q``."""
        return haul(self.env, "queues", *args).split()

    def worker_metrics(self, name: str = "worker") -> str | None:
        """The worker's Prometheus text, or None while its endpoint does not answer."""
        try:
            response = httpx.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    def wait_worker_ready(self, name: str) -> None:
        """Until the worker's latest start has booted and consumes (Dramatiq logs it)."""
        wait_for(
            lambda: self.log(name).count(_READY) > self.boots.get(name, 0),
            timeout=30,
            what=f"{name} to boot",
        )

    def start_scheduler(self, name: str = "scheduler") -> None:
        """`periodiq actors`: it fires every periodic actor once at start, then each minute."""
        self.start(name, [str(BIN / "periodiq"), "actors"])

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        _stop(self.processes.pop(name), sig)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(conninfo(self.database)) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def wait_api_ready(base_url: str) -> None:
    """Until the API at ``base_url`` answers ``/health/ready`` with 200."""

    def ready() -> bool:
        try:
            return httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=30, what=f"the API at {base_url} to be ready")


def submit(http: httpx.Client, url: str, **body: Any) -> str:
    response = http.post("/v1/jobs", json={"url": url, **body})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"
    return str(response.json()["id"])


def wait_status(
    http: httpx.Client, job_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_for(
        reached, timeout=timeout, interval=0.1, what=f"job {job_id} to reach {statuses}"
    )


def wait_downloading(http: httpx.Client, job_id: str, *, attempt: int | None = None) -> None:
    """Until the job's bytes are arriving (in its n-th attempt, when given)."""

    def downloading() -> bool:
        job = http.get(f"/v1/jobs/{job_id}").json()
        arriving = job["phase"] == "downloading" and (job["progress"]["bytes_done"] or 0) > 0
        return arriving and (attempt is None or job["attempts"] == attempt)

    wait_for(downloading, timeout=30, what=f"the download to be under way (attempt {attempt})")


def wait_lease_expired(stack: Stack, job_id: str) -> None:
    """Until a dead worker's lease on the job has run out (by the database's clock)."""
    wait_for(
        lambda: stack.query(
            "SELECT 1 FROM jobs WHERE id = %s AND lease_expires_at < now()", uuid.UUID(job_id)
        ),
        timeout=20,
        what="the dead worker's lease to expire",
    )


def download_outcomes(http: httpx.Client, job_id: str) -> list[str]:
    """How each download attempt of the job ended, in order."""
    attempts = http.get(f"/v1/jobs/{job_id}/attempts").json()["items"]
    return [a["outcome"] for a in attempts if a["step"] == "download"]


def assert_invariants(stack: Stack) -> None:
    """What must hold over the whole table, whatever died on the way.

    Every succeeded download has exactly one artifact whose file exists with the
    recorded sha256 (a subscription's check stores no file); no job has two attempts
    open at once; no file in storage belongs to no artifact.
    """
    artifacts = stack.query(
        "SELECT j.id, count(a.id), min(a.path), min(a.sha256) FROM jobs j "
        "LEFT JOIN artifacts a ON a.job_id = j.id "
        "WHERE j.status = 'succeeded' AND j.kind = 'download' "
        "AND NOT EXISTS (SELECT 1 FROM jobs c WHERE c.parent_id = j.id) GROUP BY j.id"
    )
    for job_id, count, path, sha256 in artifacts:
        assert count == 1, f"succeeded job {job_id} has {count} artifacts"
        stored = stack.storage / path
        assert stored.is_file(), f"the file of job {job_id} is missing"
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha256
    open_twice = stack.query(
        "SELECT job_id FROM job_attempts WHERE finished_at IS NULL "
        "GROUP BY job_id HAVING count(*) > 1"
    )
    assert open_twice == [], f"jobs with overlapping attempts: {open_twice}"
    known = {stack.storage / p for (p,) in stack.query("SELECT path FROM artifacts")}
    on_disk = {p for p in stack.storage.rglob("*") if p.is_file()}
    assert on_disk <= known, f"orphan files: {sorted(on_disk - known)}"
