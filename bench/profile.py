"""Where a process's CPU goes: py-spy samples summarised by library and by haul function.

py-spy samples a running process from outside (no code change, all threads and
forked workers), and by default counts only threads that are on the CPU, so the
shares below are shares of CPU time, not of wall time.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.procs import BIN

if TYPE_CHECKING:
    from pathlib import Path

#: Path fragment → the part of the stack it belongs to; first match from the leaf wins.
CATEGORIES: list[tuple[str, str]] = [
    ("/psycopg", "PostgreSQL driver (psycopg)"),
    ("/sqlalchemy/", "SQLAlchemy / SQLModel"),
    ("/sqlmodel/", "SQLAlchemy / SQLModel"),
    ("/pika/", "RabbitMQ client (pika)"),
    ("/dramatiq/", "Dramatiq"),
    ("/periodiq", "Dramatiq"),
    ("/structlog/", "logging (structlog + logging)"),
    ("/logging/", "logging (structlog + logging)"),
    ("/litestar/", "Litestar"),
    ("/uvicorn/", "uvicorn + h11"),
    ("/h11/", "uvicorn + h11"),
    ("/httptools/", "uvicorn + h11"),
    ("/anyio/", "anyio (threads)"),
    ("/pydantic", "pydantic"),
    ("/msgspec/", "msgspec"),
    ("/yt_dlp/", "yt-dlp"),
    ("/prometheus_client/", "prometheus-client"),
    ("/service/", "haul's own code"),
    ("/actors/", "haul's own code"),
    ("/bench/", "bench fakes"),
]


@dataclass(frozen=True)
class Profile:
    samples: int
    by_category: list[tuple[str, int]]
    by_function: list[tuple[str, int]]

    def markdown(self, what: str) -> str:
        if not self.samples:
            return f"py-spy took no samples of {what}."
        lines = [
            f"py-spy, {self.samples:,} CPU samples of {what}. Each sample is charged to the",
            "nearest library on its stack, counted from the running frame outwards:",
            "",
            "| part of the stack | share of CPU samples |",
            "| --- | --- |",
        ]
        lines += [f"| {name} | {100 * n / self.samples:.1f}% |" for name, n in self.by_category]
        lines += [
            "",
            "haul's functions by inclusive share (a sample counts for every haul function on "
            "its stack):",
            "",
            "| function | inclusive share |",
            "| --- | --- |",
        ]
        lines += [f"| `{name}` | {100 * n / self.samples:.1f}% |" for name, n in self.by_function]
        return "\n".join(lines)


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> subprocess.Popen[bytes] | None:
    """Start sampling ``pid`` and its children for ``seconds``; None when py-spy is missing."""
    spy = BIN / "py-spy"
    if not spy.exists() and shutil.which("py-spy") is None:
        return None
    cmd = [str(spy) if spy.exists() else "py-spy", "record", "--pid", str(pid), "--subprocesses"]
    cmd += ["--rate", str(rate), "--duration", str(max(1, round(seconds)))]
    cmd += ["--format", "raw", "--full-filenames", "--nonblocking", "--gil", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rpartition(" ")
    frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
    return frames, int(count)


def _category(frame: str) -> str | None:
    for fragment, name in CATEGORIES:
        if fragment in frame:
            return name
    return None


def _function(frame: str) -> str | None:
    name, _, where = frame.partition(" (")
    for package in ("/service/", "/actors/"):
        if package in where:
            module = package.strip("/") + "/" + where.split(package, 1)[1].split(":", 1)[0]
            return f"{module.removesuffix('.py').replace('/', '.')}.{name}"
    return None


def summarise(raw: Path, top: int = 12) -> Profile:
    by_category: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    total = 0
    text = raw.read_text(errors="replace") if raw.exists() else ""
    for line in text.splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        total += count
        leaf_first = list(reversed(frames))
        category = next((c for f in leaf_first if (c := _category(f))), "Python stdlib / other")
        by_category[category] += count
        for function in {fn for f in frames if (fn := _function(f))}:
            by_function[function] += count
    return Profile(total, by_category.most_common(), by_function.most_common(top))
