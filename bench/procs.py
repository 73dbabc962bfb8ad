"""Processes the bench starts (uvicorn, ``dramatiq``, the media server) and their memory.

Each runs in its own session so it can be stopped with everything it forked;
memory is read from ``/proc`` (RSS, and PSS, which shares forked pages fairly).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A started process, its log file, and how to stop it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def read_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM to the main process (Dramatiq relays it), then kill the group if needed."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def kill(self) -> None:
        """SIGKILL to the whole session: for teardown, when the work is already measured."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def tree(self) -> list[int]:
        """This process and its descendants that are Python (not ffmpeg and friends)."""
        return [p for p in descendants(self.pid, include_self=True) if _is_python(p)]


def start(name: str, cmd: list[str], env: dict[str, str], logs: Path) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    # A fresh log per start: readiness is read from it.
    with log.open("wb") as out:
        popen = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Proc(name, popen, log)


def descendants(pid: int, *, include_self: bool = False) -> list[int]:
    found = [pid] if include_self else []
    stack = [pid]
    while stack:
        current = stack.pop()
        children: list[int] = []
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                children += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
        found += children
        stack += children
    return found


def _is_python(pid: int) -> bool:
    try:
        return "python" in os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """The process's high-water mark of resident memory since it started."""
    return _status_kib(pid, "VmHWM") / 1024


def pss_mib(pid: int) -> float:
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time a process has used so far; with ``children``, plus that of
    the children it has waited for (ffmpeg and ffprobe runs, for a worker)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    own = int(fields[11]) + int(fields[12])
    waited = int(fields[13]) + int(fields[14]) if children else 0
    return (own + waited) / ticks


def tree_cpu(pids: list[int]) -> tuple[float, float]:
    """(own, waited-for children's) CPU seconds of a set of processes."""
    own = sum(cpu_seconds(p) for p in pids)
    return own, sum(cpu_seconds(p, children=True) for p in pids) - own


def pids_named(*names: str) -> list[int]:
    """Every process whose command name is one of ``names`` (e.g. postgres, beam.smp)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if comm in names:
            found.append(int(proc.name))
    return found


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in pids}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots; processes born in between count from zero
    (those that ended in between are missed)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())
