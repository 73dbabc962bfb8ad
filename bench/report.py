"""What a scenario returns (figures with their baselines, and prose sections), the
table printed at the end, and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING

import pika
import psycopg

from bench.infra import BROKER_URL, conninfo
from bench.procs import REPO

if TYPE_CHECKING:
    from pathlib import Path

    from bench.sizes import Sizes
    from bench.stats import Sample


@dataclass(frozen=True)
class Figure:
    """One measured figure of haul, its bare baseline from the same run, and its target.

    ``ratio`` is haul ÷ baseline unless the scenario defines it otherwise (it says so
    in ``ratio_note``); ``met`` is None where the issue sets no target.
    """

    scenario: str
    name: str
    unit: str
    value: Sample
    baseline_name: str = ""
    baseline: Sample | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    miss: str = ""
    digits: int | None = None

    def cells(self) -> list[str]:
        baseline = ""
        if self.baseline is not None:
            baseline = f"{self.baseline.show(self.digits)} {self.unit} ({self.baseline_name})"
        elif self.baseline_name:
            baseline = self.baseline_name
        ratio = f"{self.ratio:.2f}×" if self.ratio is not None else ""
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        if self.met is False and self.miss:
            verdict += f" ({self.miss})"
        return [
            self.scenario,
            self.name,
            f"{self.value.show(self.digits)} {self.unit}",
            baseline,
            ratio,
            self.target,
            verdict,
        ]


@dataclass
class Outcome:
    """Everything one scenario produced."""

    figures: list[Figure] = field(default_factory=list)
    #: Markdown sections for docs/benchmarks.md: (title, body).
    sections: list[tuple[str, str]] = field(default_factory=list)


HEADER = ["scenario", "figure", "haul", "baseline (same run)", "ratio", "target", "verdict"]


def table_text(figures: list[Figure]) -> str:
    """A plain-text table for the terminal."""
    rows = [HEADER, *(f.cells() for f in figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_markdown(figures: list[Figure]) -> str:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [row(HEADER), row(["---"] * len(HEADER))]
    lines += [row(f.cells()) for f in figures]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kib / 1024**2:.1f} GiB",
        "kernel": platform.release(),
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "haul": _git_commit()}
    for package in (
        "dramatiq",
        "pika",
        "periodiq",
        "litestar",
        "uvicorn",
        "sqlalchemy",
        "sqlmodel",
        "psycopg",
        "yt-dlp",
        "py-spy",
    ):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    try:
        with psycopg.connect(conninfo("postgres"), connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            found["PostgreSQL"] = str(row[0]) if row else "?"
    except psycopg.Error:
        found["PostgreSQL"] = "unreachable"
    try:
        connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        props = connection._impl.server_properties  # the broker's own announcement
        version = props.get("version", "?")
        found["RabbitMQ"] = version.decode() if isinstance(version, bytes) else str(version)
        connection.close()
    except (pika.exceptions.AMQPError, AttributeError):
        found["RabbitMQ"] = "unreachable"
    try:
        first = subprocess.run(
            ["ffmpeg", "-version"], capture_output=True, text=True, check=True
        ).stdout.split("\n", 1)[0]
        found["ffmpeg"] = first.split()[2]
    except (OSError, subprocess.CalledProcessError, IndexError):
        found["ffmpeg"] = "not found"
    return found


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


METHOD = """\
- Every figure is the **median of {runs} measured run(s)**, with the spread (min–max)
  in brackets. Warm-up work is run first on each side and **excluded**; each scenario
  says what its warm-up was.
- Baselines run **in the same invocation**, interleaved with haul's runs, on the same
  files, with the same yt-dlp parameters (haul's own `service.media.options`), the same
  broker settings (publisher confirms, priority queues) and the same worker
  processes/threads. The source files sit in the page cache for both sides; yt-dlp's
  cache is off on both sides.
- Media come from a local HTTP server over loopback (no internet).
- The machine is **shared**: another engineer's test runs used the same two cores,
  PostgreSQL and RabbitMQ at times. Absolute numbers drift with that load; the ratios
  are taken within one run and hold better.
"""


def markdown(
    outcomes: dict[str, Outcome], sizes: Sizes, elapsed_s: float, notes: str | None
) -> str:
    info = machine()
    found = versions()
    figures = [f for o in outcomes.values() for f in o.figures]
    parts = [
        "# Benchmarks",
        "",
        "Generated by `just bench` (`python -m bench`); do not edit by hand"
        + (": the analysis at the end comes from `bench/analysis.md`." if notes else "."),
        "",
        f"Run on {info['date']}: {info['cores']} cores ({info['cpu']}), {info['memory']}"
        f" of memory, Linux {info['kernel']}. The whole suite took {elapsed_s / 60:.1f} min."
        + (" **Smoke sizes: these figures mean nothing.**" if sizes.smoke else ""),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in found.items()) + ".",
        "",
        "## Method",
        "",
        METHOD.format(runs=sizes.runs),
        "## Results",
        "",
        table_markdown(figures),
        "",
    ]
    for title, outcome in outcomes.items():
        for heading, body in outcome.sections:
            parts += [f"## {title}: {heading}" if heading else f"## {title}", "", body.strip(), ""]
    if notes:
        parts += ["## Analysis", "", notes.strip(), ""]
    return "\n".join(parts)


def with_notes(report: str, notes: str) -> str:
    """The report with its analysis section replaced by ``notes`` (appended if missing)."""
    body = report.split("\n## Analysis\n", 1)[0].rstrip("\n")
    return f"{body}\n\n## Analysis\n\n{notes.strip()}\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
