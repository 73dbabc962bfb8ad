"""3. One large file: haul against bare yt-dlp on the same 1 GiB file.

Both sides skip the metadata and thumbnail post-processing (the same ffmpeg copy
on both sides would only dilute the ratio), so what differs is haul's own work:
the probe, two queue hops, progress written to the row once per heartbeat, the
SHA-256 of the file and the move into storage. Bare yt-dlp is ``YoutubeDL`` with
haul's parameters in a warmed process, timed around the download alone; haul is
timed from the row's ``created_at`` to its ``finished_at``.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from typing import TYPE_CHECKING

from bench import haul_batch, ytdlp_loop
from bench.media import MediaProcess, make_clip, make_copies, make_large, warm_page_cache
from bench.procs import peak_rss_mib, rss_mib
from bench.report import Figure, Outcome
from bench.stack import HaulStack
from bench.stats import Sample, fmt
from service.work.storage import sha256_of

if TYPE_CHECKING:
    from bench.procs import Proc
    from bench.sizes import Sizes
    from bench.stack import Context

TITLE = "3. One large file"
OPTIONS = {"embed_metadata": False, "embed_thumbnail": False}
RATIO_TARGET = 0.9


class RssSampler:
    """The largest resident set of any process of the worker fleet, sampled every 50 ms."""

    def __init__(self, worker: Proc) -> None:
        self.worker = worker
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            sizes = [rss_mib(p) for p in self.worker.tree()]
            self.peak = max(self.peak, *sizes, 0.0)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        hwm = [peak_rss_mib(p) for p in self.worker.tree()]
        self.peak = max(self.peak, *hwm, 0.0)


def run(ctx: Context, sizes: Sizes) -> Outcome:
    media = ctx.dir("large-media")
    big = media / "large.mp4"
    size = make_large(big, sizes.large_bytes)
    make_clip(media / "clip.mp4")
    # Enough warm-up jobs that every worker process has probed and downloaded once.
    warm_names = [f"warm-{i}.mp4" for i in range(max(2, sizes.small_warmup))]
    make_copies(media / "clip.mp4", media, warm_names)
    warm_page_cache(big)
    began = time.perf_counter()
    sha256_of(big)
    hashing = time.perf_counter() - began
    stack = HaulStack(ctx, "large")
    haul: list[haul_batch.BatchResult] = []
    bare: list[ytdlp_loop.LoopResult] = []
    peaks: list[float] = []
    phases: list[dict[str, float]] = []
    try:
        with MediaProcess(media) as server:
            url, warm = server.url("large.mp4"), [server.url(n) for n in warm_names]
            stack.start_api()
            key = stack.create_key()
            worker = stack.start_worker()
            haul_batch.run(stack, key, warm, timeout=120, options=OPTIONS)  # warm-up
            for i in range(sizes.runs):
                with RssSampler(worker) as sampler:
                    result = haul_batch.run(stack, key, [url], timeout=600, options=OPTIONS)
                haul.append(result)
                peaks.append(sampler.peak)
                phases.append(_phases(stack, result.job_ids[0]))
                shutil.rmtree(stack.root / "files", ignore_errors=True)
                out = ctx.dir(f"large-bare-{i}")
                bare.append(ytdlp_loop.run([url], warm[:1], out, options=OPTIONS))
                shutil.rmtree(out, ignore_errors=True)
    finally:
        stack.close()
        big.unlink(missing_ok=True)
    return _outcome(sizes, size, haul, bare, peaks, phases, hashing)


def _phases(stack: HaulStack, job_id: str) -> dict[str, float]:
    """Where one job's wall time went, from its attempt rows."""
    rows = stack.query(
        "SELECT a.step, extract(epoch FROM a.started_at - j.created_at), "
        "extract(epoch FROM a.finished_at - a.started_at), "
        "extract(epoch FROM j.finished_at - a.finished_at) "
        "FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE a.job_id = %s::uuid "
        "ORDER BY a.id",
        job_id,
    )
    steps = {str(r[0]): (float(r[1]), float(r[2]), float(r[3])) for r in rows}
    probe, download = steps["probe"], steps["download"]
    return {
        "queued → probe claimed": probe[0],
        "probe": probe[1],
        "probe → download claimed": download[0] - probe[0] - probe[1],
        "download, hash, store": download[1],
        "after the attempt closed": download[2],
    }


def _outcome(
    sizes: Sizes,
    size: int,
    haul: list[haul_batch.BatchResult],
    bare: list[ytdlp_loop.LoopResult],
    peaks: list[float],
    phases: list[dict[str, float]],
    hashing: float,
) -> Outcome:
    mib = size / 1024**2
    scenario = "3 large file"
    haul_tp = Sample(tuple(mib / r.wall for r in haul))
    bare_tp = Sample(tuple(mib / r.wall for r in bare))
    ratio = haul_tp.median / bare_tp.median
    figures = [
        Figure(
            scenario,
            f"{mib:,.0f} MiB, throughput",
            "MiB/s",
            haul_tp,
            "bare yt-dlp",
            bare_tp,
            ratio,
            f"≥ {RATIO_TARGET}× bare",
            None if sizes.smoke else ratio >= RATIO_TARGET,
            f"{RATIO_TARGET - ratio:.2f} short",
        ),
        Figure(
            scenario,
            "peak RSS of a worker process",
            "MiB",
            Sample(tuple(peaks)),
            "bare yt-dlp process",
            Sample(tuple(r.peak_rss_mib for r in bare)),
            statistics.median(peaks) / statistics.median(r.peak_rss_mib for r in bare),
        ),
    ]
    rows = "\n".join(
        f"| {name} | {fmt(statistics.median(p[name] for p in phases))} s |" for name in phases[0]
    )
    body = (
        f"One file of {size:,} bytes (an mp4 made by looping a lossless 10 s segment), "
        "read once before the runs so that both sides find it in the page cache. Options "
        f"on both sides: haul's `best` preset with `{OPTIONS}`. Warm-up, excluded: small "
        "files through every worker process, and one through the bare process. "
        f"{sizes.runs} interleaved run(s) per side; the stored file is deleted after each. "
        "Peak RSS is the largest resident set of any process of the fleet (sampled "
        "every 50 ms, and each process's high-water mark), "
        "ffmpeg children excluded on both sides.\n\n"
        "Where haul's time went (median run, from the job's attempt rows):\n\n"
        "| phase | time |\n| --- | --- |\n"
        f"{rows}\n\n"
        f"For scale: SHA-256 of the file in one Python thread takes {fmt(hashing)} s here; "
        f"bare yt-dlp's whole download took {fmt(statistics.median(r.wall for r in bare))} s."
    )
    return Outcome(figures, [("method and where the time goes", body)])
