"""The README's quick start on a fresh clone, as a new user runs it (issue 16).

The machine has Python, PostgreSQL and RabbitMQ, and no ``just``: the first command
(``sh infra/just.sh run``) must install what haul needs and run it, and ``sh
infra/just.sh demo`` must let a person download the sample clip without internet.
Without ffmpeg, the first command and the worker must refuse at once, in one line.
These run the commands exactly as the README shows them; only the environment says
which database, queues and ports are this test's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest

from tests.support.fresh_clone import Session, copy_checkout, path_without
from tests.support.network import free_port
from tests.support.postgres import ADMIN_DATABASE_URL, RUN_ID, admin_execute, db_url
from tests.support.rabbitmq import delete_queues
from tests.support.skips import unavailable
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The first test waits for a fresh install (its fixture), longer than pytest's 300 s default.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
FIRST_COMMAND = ["sh", "infra/just.sh", "run"]  # the README's quick start, line 1
DEMO_COMMAND = ["sh", "infra/just.sh", "demo"]  # the README's "Try it locally"
#: A fresh install under load (pip from PyPI, 2 shared cores) takes minutes.
INSTALL_TIMEOUT_S = 1200
START_TIMEOUT_S = 300
#: How just exits when Ctrl-C stopped its recipe (it says "error: interrupted by SIGINT").
CTRL_C = 130
KEY = re.compile(r"haul_[A-Za-z0-9_-]{40,}")
#: What every line of a running haul looks like: time, level, role, (job id,) message.
READABLE = re.compile(
    r"\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +"
    r"(api|worker|deliveries|scheduler|migrate|demo) +\S"
)


@pytest.fixture(autouse=True)
def _show_logs_on_failure() -> Iterator[None]:
    """This module starts haul its own way, not through the shared ``stack`` fixture."""
    yield


@dataclass
class Machine:
    clone: Path
    env: dict[str, str]
    api: str
    demo_port: int
    logs: Path

    def session(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Session:
        return Session.start(cmd, self.clone, env or self.env, self.logs / f"{name}.log")


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory, rabbitmq: str) -> Iterator[Machine]:
    """A fresh clone, a PATH without ``just``, and this module's database, queues and ports."""
    try:
        admin_execute("SELECT 1")
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {ADMIN_DATABASE_URL}: {exc}")
    if shutil.which("git") is None:
        unavailable("git is needed to list the checkout's files")
    root = tmp_path_factory.mktemp("first_run")
    clone = copy_checkout(REPO, root / "haul")
    database = f"haul_test_{RUN_ID}_first_run"
    prefix = f"haulfirstrun{RUN_ID}"
    port = free_port()
    demo_port = free_port()
    keep = ("HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "CI", "PIP_INDEX_URL", "PIP_CACHE_DIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env |= {
        "PATH": path_without(root / "bin", "just"),
        "HAUL_DATABASE_URL": db_url(database),
        "HAUL_QUEUE_PREFIX": prefix,
        "HAUL_PORT": str(port),
        "HAUL_DEMO_PORT": str(demo_port),
        "HAUL_WORKER_METRICS_PORT": str(free_port()),
        "HAUL_DELIVERIES_METRICS_PORT": str(free_port()),
        "HAUL_WORKER_METRICS_DIR": str(root / "metrics"),
        "HAUL_WORKER_PROCESSES": "1",
    }
    logs = root / "logs"
    logs.mkdir()
    try:
        yield Machine(clone, env, f"http://127.0.0.1:{port}", demo_port, logs)
    finally:
        delete_queues(prefix)
        admin_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def banner(session: Session, timeout: float) -> str:
    """The block haul prints once it answers, waited for while the session lives."""

    def printed() -> str | None:
        out = session.output()
        if session.proc.poll() is not None:
            raise AssertionError(f"exited with {session.proc.returncode}:\n{out[-4000:]}")
        blocks = out.split("─" * 72)
        return blocks[1] if len(blocks) >= 3 else None

    return wait_for(printed, timeout=timeout, interval=0.5, what="the start-up banner")


def row(block: str, label: str) -> str:
    """A banner row's value: ``  try it      curl …`` → ``curl …``."""
    found = re.search(rf"^  {label} +(.+)$", block, re.MULTILINE)
    assert found, f"no {label!r} row in the banner:\n{block}"
    return found[1]


def readable_part(output: str) -> list[str]:
    """The lines haul printed from its first log line on, without the banner, blank lines,
    the indented lines of a multi-line message, and just's own last word on Ctrl-C."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if READABLE.match(line))
    shown, in_banner = [], False
    for line in lines[first:]:
        if line == "─" * 72:
            in_banner = not in_banner
        elif line.strip() and not in_banner and not line.startswith(" "):
            shown.append(line)
    if shown and shown[-1] == "error: interrupted by SIGINT":
        shown.pop()
    return shown


def shell(line: str, env: dict[str, str]) -> str:
    """A line from the banner, pasted into a shell."""
    return subprocess.run(
        ["sh", "-c", line], env=env, capture_output=True, text=True, check=True, timeout=30
    ).stdout


@dataclass
class FirstRun:
    key: str
    banner: str
    seconds: float


@pytest.fixture(scope="module")
def first_run(machine: Machine) -> FirstRun:
    """The README's first command on the fresh clone: install, start, banner, Ctrl-C."""
    assert shutil.which("just", path=machine.env["PATH"]) is None
    session = machine.session("first", FIRST_COMMAND)
    try:
        block = banner(session, INSTALL_TIMEOUT_S)
        seconds = time.monotonic() - session.started
        print(f"\nfirst command on a fresh clone, install included: {seconds:.0f} s to the banner")
        key = KEY.search(row(block, "admin key"))
        assert key, block
        assert httpx.get(f"{machine.api}/health/ready", timeout=5).status_code == 200
        # The banner's curl line works as printed, without internet: an empty job list.
        listed = json.loads(shell(row(block, "jobs"), machine.env))
        assert listed["items"] == []
    finally:
        code = session.interrupt()
    output = session.output()
    # just reports Ctrl-C as 130, after the recipe stopped every process (see the test)
    assert code == CTRL_C, output[-4000:]
    return FirstRun(key[0], block, seconds)


def test_the_first_command_installs_and_runs_haul_without_just(
    machine: Machine, first_run: FirstRun
) -> None:
    output = (machine.logs / "first.log").read_text()

    # Then it made a first admin key and printed it once, in the banner, never in a log line
    assert output.count(first_run.key) == first_run.banner.count(first_run.key) >= 1
    assert (machine.clone / ".venv" / "bin" / "just").is_file()
    # And every line haul printed once started is readable: time, level, role, message
    lines = readable_part(output)
    unreadable = [line for line in lines if not READABLE.match(line)]
    assert not unreadable, unreadable
    assert any(" api " in line and "Uvicorn running" in line for line in lines)
    assert any(" worker " in line and "ready for action" in line for line in lines)
    assert any(" scheduler " in line for line in lines)
    # And Ctrl-C stopped every process: nothing answers on the API's port any more
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{machine.api}/health/live", timeout=2)


def test_the_demo_downloads_the_sample_clip_offline(machine: Machine, first_run: FirstRun) -> None:
    # Given the installed clone, `sh infra/just.sh demo` (the second run: nothing to install)
    session = machine.session("demo", DEMO_COMMAND)
    try:
        block = banner(session, START_TIMEOUT_S)
        seconds = time.monotonic() - session.started
        print(f"\nsecond run (demo), nothing to install: {seconds:.0f} s to the banner")
        env = {**machine.env, "KEY": first_run.key}
        assert "admin key" not in block  # a client exists: no second admin

        # When the banner's "try it" line is pasted into a shell
        job = json.loads(shell(row(block, "try it"), env))

        # Then the sample clip downloads and is served back
        with httpx.Client(
            base_url=machine.api, headers={"Authorization": f"Bearer {first_run.key}"}, timeout=10
        ) as http:
            done = wait_for(
                lambda: (
                    (j := http.get(f"/v1/jobs/{job['id']}").json())["status"]
                    in {"succeeded", "failed", "cancelled"}
                    and j
                ),
                timeout=180,
                interval=0.5,
                what="the demo clip's job to end",
            )
            assert done["status"] == "succeeded", done
            file = http.get(f"/v1/jobs/{job['id']}/file")
            assert file.status_code == 200
            assert file.headers["content-type"] == "video/mp4"
            assert len(file.content) == done["file"]["size"] > 10_000
            # And the egress policy let this run reach the demo's port only, not loopback
            other = http.post("/v1/jobs", json={"url": f"{machine.api}/health/live"})
            assert other.status_code == 422, other.text
            assert "127.0.0.1 is loopback" in other.json()["detail"]
            # And the worker's lines about it name the job
            wait_for(
                lambda: re.search(rf" worker +job={job['id']} ", session.output()),
                timeout=30,
                what="a worker line naming the job",
            )
    finally:
        code = session.interrupt()
    assert code == CTRL_C, session.output()[-4000:]


def test_without_ffmpeg_the_first_command_and_the_worker_refuse_in_one_line(
    machine: Machine, first_run: FirstRun, tmp_path: Path
) -> None:
    # Given a machine where `command -v ffmpeg` fails (and apt-get cannot bring it)
    env = {
        **machine.env,
        "PATH": path_without(tmp_path / "bin", "just", "ffmpeg", "ffprobe", "apt-get"),
    }
    assert shutil.which("ffmpeg", path=env["PATH"]) is None

    # When a person runs the first command
    run = machine.session("no-ffmpeg", FIRST_COMMAND, env)
    code = run.proc.wait(timeout=START_TIMEOUT_S)

    # Then it refuses with one line naming the install command, and starts nothing
    refusals = [line for line in run.output().splitlines() if "ffmpeg" in line]
    assert code != 0
    assert len(refusals) == 1, run.output()
    assert "apt-get install ffmpeg" in refusals[0]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{machine.api}/health/live", timeout=2)

    # And the worker, started on its own, refuses too instead of failing downloads
    worker = machine.session(
        "worker-no-ffmpeg", [".venv/bin/dramatiq", "actors", "--processes", "1"], env
    )
    code = worker.proc.wait(timeout=START_TIMEOUT_S)
    assert code != 0
    assert "apt-get install ffmpeg" in worker.output()
    assert "Worker process is ready" not in worker.output()
