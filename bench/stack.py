"""haul as its users run it, started by the bench: the API under uvicorn and a worker
fleet under ``dramatiq``, on a database and queue prefix of the bench's own.

Also the bare baselines' processes, started the same way with the same settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from bench import infra
from bench.procs import BIN, REPO, Proc, free_port, start, wait_for

if TYPE_CHECKING:
    from pathlib import Path

#: The worker fleet `just worker` runs: the same environment variables and defaults.
PROCESSES = int(os.environ.get("HAUL_WORKER_PROCESSES", "2"))
THREADS = int(os.environ.get("HAUL_WORKER_THREADS", "4"))
_READY = "Worker process is ready"


@dataclass
class Context:
    """One bench invocation: its run id (in every name it creates) and scratch dir."""

    run_id: str
    scratch: Path

    def dir(self, name: str) -> Path:
        path = self.scratch / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def _worker_cmd(module: str, processes: int, threads: int) -> list[str]:
    return [str(BIN / "dramatiq"), module, "--processes", str(processes), "--threads", str(threads)]


def _uvicorn_cmd(app: str, port: int) -> list[str]:
    return [str(BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port)]


def worker_ready(proc: Proc, processes: int) -> None:
    """Until every worker process of a `dramatiq` fleet has booted."""
    wait_for(
        lambda: proc.read_log().count(_READY) >= processes or _dead(proc),
        timeout=60,
        what=f"{proc.name} to boot",
    )
    _dead(proc)


def _dead(proc: Proc) -> bool:
    if not proc.alive():
        raise RuntimeError(f"{proc.name} exited; its log:\n{proc.read_log()[-3000:]}")
    return False


def http_ready(proc: Proc, url: str, method: str = "GET") -> None:
    def answers() -> bool:
        _dead(proc)
        try:
            return httpx.request(method, url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout=60, what=f"{proc.name} to answer")


@dataclass
class HaulStack:
    """A database, a queue prefix, storage dirs and the processes that use them."""

    ctx: Context
    label: str
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.database = f"haul_bench_{self.ctx.run_id}_{self.label}"
        self.prefix = f"haulbench{self.ctx.run_id}{self.label}"
        self.root = self.ctx.dir(self.label)
        infra.create_database(self.database, self.ctx.run_id)
        self.env = {
            **os.environ,
            "HAUL_DATABASE_URL": infra.database_url(self.database),
            "HAUL_BROKER_URL": infra.BROKER_URL,
            "HAUL_QUEUE_PREFIX": self.prefix,
            "HAUL_STORAGE_DIR": str(self.root / "files"),
            "HAUL_TEMP_DIR": str(self.root / "tmp"),
            "HAUL_LOG_JSON": "true",
            # The media server listens on loopback; haul refuses non-public hosts otherwise.
            "HAUL_EGRESS_ALLOW": "127.0.0.1/32",
            "dramatiq_queue_prefetch": str(THREADS),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.base_url = ""

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def start_api(self) -> str:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        proc = start("api", _uvicorn_cmd("service.api.app:app", port), self.env, self.logs)
        self.procs["api"] = proc
        http_ready(proc, f"{self.base_url}/health/ready")
        return self.base_url

    def start_worker(
        self, module: str = "actors", processes: int = PROCESSES, threads: int = THREADS
    ) -> Proc:
        proc = start("worker", _worker_cmd(module, processes, threads), self.env, self.logs)
        self.procs["worker"] = proc
        worker_ready(proc, processes)
        return proc

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Stop a process gracefully, or with ``kill`` at once (Dramatiq's graceful
        shutdown takes about 3 s, and nothing is left to finish after a measurement)."""
        proc = self.procs.pop(name, None)
        if proc is not None:
            if kill:
                proc.kill()
            else:
                proc.stop()

    def create_key(self, name: str = "bench") -> str:
        out = subprocess.run(
            [str(BIN / "haul"), "clients", "create", name],
            env=self.env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip().splitlines()[0]  # line 1: the key; line 2: the webhook secret

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(infra.conninfo(self.database)) as conn:
            return conn.execute(sql, params).fetchall()

    def client_id(self) -> uuid.UUID:
        rows = self.query("SELECT id FROM clients ORDER BY created_at LIMIT 1")
        return uuid.UUID(str(rows[0][0]))

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name, kill=True)
        infra.delete_queues(self.prefix)
        infra.drop_database(self.database)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Bare:
    """The bare baselines' processes: `bench.bare_api` and `bench.bare_worker`."""

    ctx: Context
    label: str
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prefix = f"haulbench{self.ctx.run_id}{self.label}"
        self.queue = f"{self.prefix}.bare"
        self.root = self.ctx.dir(self.label)
        self.env = {
            **os.environ,
            "HAUL_BROKER_URL": infra.BROKER_URL,
            "BENCH_QUEUE": self.queue,
            "dramatiq_queue_prefetch": str(THREADS),
            "PYTHONUNBUFFERED": "1",
        }
        self.base_url = ""

    def start_api(self) -> str:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        proc = start("bare-api", _uvicorn_cmd("bench.bare_api:app", port), self.env, self.root)
        self.procs["api"] = proc
        http_ready(proc, f"{self.base_url}/health", method="POST")
        return self.base_url

    def start_worker(self, processes: int = PROCESSES, threads: int = THREADS) -> Proc:
        cmd = _worker_cmd("bench.bare_worker", processes, threads)
        proc = start("bare-worker", cmd, self.env, self.root)
        self.procs["worker"] = proc
        worker_ready(proc, processes)
        return proc

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Stop a process gracefully, or with ``kill`` at once (Dramatiq's graceful
        shutdown takes about 3 s, and nothing is left to finish after a measurement)."""
        proc = self.procs.pop(name, None)
        if proc is not None:
            if kill:
                proc.kill()
            else:
                proc.stop()

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name, kill=True)
        infra.delete_queues(self.prefix)
        shutil.rmtree(self.root, ignore_errors=True)
