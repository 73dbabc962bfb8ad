"""The in-process baseline: yt-dlp's ``YoutubeDL`` called in a loop, no haul at all.

Each thread keeps one ``YoutubeDL`` for all its files (the cheapest way to use
yt-dlp from Python) with exactly the parameters haul passes (``download_params``
of the same options), minus haul's hooks. ``run()`` starts ``processes`` children
of this module, lets each warm up on its own files, then starts them together
and times them from the bench; a child prints one JSON line of its own timings.
"""

from __future__ import annotations

import json
import queue
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import REPO, tree_cpu


@dataclass(frozen=True)
class LoopResult:
    wall: float
    per_file: list[float]
    cpu_python: float
    cpu_children: float
    peak_rss_mib: float


class _Quiet:
    def debug(self, msg: str) -> None:
        pass

    info = warning = error = debug


def run(
    urls: list[str],
    warm: list[str],
    out: Path,
    *,
    processes: int = 1,
    threads: int = 1,
    options: dict[str, Any] | None = None,
) -> LoopResult:
    """Download ``urls`` with ``processes`` × ``threads`` loops; ``warm`` first, untimed."""
    children = []
    for p in range(processes):
        config = {
            "urls": urls[p::processes],
            "warm": warm[p * threads : (p + 1) * threads] or warm[:1],
            "threads": threads,
            "out": str(out / f"p{p}"),
            "options": options or {},
        }
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.ytdlp_loop", json.dumps(config)],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("a yt-dlp loop failed to warm up")
    before = tree_cpu([c.pid for c in children])
    started = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        assert child.stdout is not None
        results.append(json.loads(child.stdout.readline()))
    wall = time.perf_counter() - started
    after = tree_cpu([c.pid for c in children])
    for child in children:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    per_file = [t for r in results for t in r["per_file"]]
    if sum(r["failed"] for r in results):
        raise RuntimeError(f"yt-dlp loop: {sum(r['failed'] for r in results)} downloads failed")
    peak = max(r["peak_rss_kib"] for r in results) / 1024
    return LoopResult(wall, per_file, after[0] - before[0], after[1] - before[1], peak)


def _child(config: dict[str, Any]) -> None:
    import yt_dlp

    from service.domain.options import JobOptions, normalize
    from service.media.options import download_params

    options = normalize(None, JobOptions(**config["options"]))
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    params = download_params(options, out) | {"logger": _Quiet()}
    loops = [yt_dlp.YoutubeDL(params) for _ in range(config["threads"])]
    for i, url in enumerate(config["warm"]):
        loops[i % len(loops)].extract_info(url, download=True)
    print("ready", flush=True)
    sys.stdin.readline()
    todo: queue.Queue[str] = queue.Queue()
    for url in config["urls"]:
        todo.put(url)
    per_file: list[float] = []
    failed: list[str] = []

    def work(ydl: Any) -> None:
        while True:
            try:
                url = todo.get_nowait()
            except queue.Empty:
                return
            began = time.perf_counter()
            try:
                ydl.extract_info(url, download=True)
            except yt_dlp.utils.YoutubeDLError:
                failed.append(url)
            per_file.append(time.perf_counter() - began)

    workers = [threading.Thread(target=work, args=(ydl,)) for ydl in loops]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"per_file": per_file, "failed": len(failed), "peak_rss_kib": peak}))
    sys.stdout.flush()
    sys.stdin.readline()


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
