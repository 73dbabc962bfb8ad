"""7. One subscription check of a big feed with nothing new.

A followed feed is listed on every check, and usually nothing in it is new: that check
is the steady cost of a subscription. haul's whole check job (``run_check``: claim the
check job, list the feed flat under its lease, find the keys already seen, record the
check and end the job, admit nothing) is run in this process against a local RSS feed
whose entries were all seen at the first check (the check job itself is made before the
clock starts, as the scheduler's tick makes it); the
baseline is bare yt-dlp listing the same feed the same way (``process=False``), which
any check must do. Worker time is this process's CPU time; the SQL statements and
commits of one check are counted on haul's engine, at two feed sizes, to show that
they do not grow with the feed.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
import yt_dlp

from bench.media import MediaProcess
from bench.report import Figure, Outcome
from bench.stack import HaulStack
from bench.stats import Sample, fmt
from service.db import subscriptions as subscription_rows
from service.db.feeds import Subscription
from service.logging import configure_logging
from service.media.options import base_params
from service.runtime import build_runtime
from service.settings import Settings
from service.subscriptions.check import run_check

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from bench.sizes import Sizes
    from bench.stack import Context
    from service.runtime import Runtime

_T = TypeVar("_T")

TITLE = "7. Subscription check"
TARGET_MS = 200.0
#: Checks per measured run (their mean is one run's figure).
CHECKS = 5


def run(ctx: Context, sizes: Sizes) -> Outcome:
    entries = 20 if sizes.smoke else 500
    small = max(2, entries // 10)
    stack = HaulStack(ctx, "subs")
    media_dir = ctx.dir("subs-media")
    try:
        stack.create_key("subs")
        with MediaProcess(media_dir) as media:
            rt = _runtime(stack)
            try:
                big_url = f"{media.base_url}/feed-big.rss?n={entries}"
                small_url = f"{media.base_url}/feed-big.rss?n={small}"
                big = _subscribe(rt, stack.client_id(), big_url)
                little = _subscribe(rt, stack.client_id(), small_url)
                haul_ms, bare_ms = [], []
                for _ in range(sizes.runs):  # interleaved: haul, then bare, per run
                    haul_ms.append(_cpu_ms(lambda: _check_job(rt, big), lambda j: run_check(rt, j)))
                    bare_ms.append(_cpu_ms(lambda: big_url, _bare_listing))
                counts = {n: _counted(rt, sub) for n, sub in ((entries, big), (small, little))}
            finally:
                rt.db.dispose()
    finally:
        stack.close()
    return _outcome(entries, small, Sample.of(*haul_ms), Sample.of(*bare_ms), counts)


def _runtime(stack: HaulStack) -> Runtime:
    settings = Settings(
        _env_file=None,
        database_url=stack.env["HAUL_DATABASE_URL"],
        broker_url=stack.env["HAUL_BROKER_URL"],
        queue_prefix=stack.prefix,
        storage_dir=stack.env["HAUL_STORAGE_DIR"],
        temp_dir=stack.env["HAUL_TEMP_DIR"],
        egress_allow="127.0.0.1/32",
        log_level="WARNING",
    )
    configure_logging(settings)
    return build_runtime(settings)


def _subscribe(rt: Runtime, client_id: uuid.UUID, url: str) -> uuid.UUID:
    """A subscription whose first check has run: every entry is now seen (backfill none)."""
    sub = Subscription(client_id=client_id, url=url, interval_s=3600, backfill="none")
    with rt.db.session() as session:
        subscription_rows.insert(session, sub)
    outcome = run_check(rt, _check_job(rt, sub.id))
    if outcome is None or not outcome.ok or outcome.queued:
        raise RuntimeError(f"the first check of {url} did not go as expected: {outcome}")
    return sub.id


def _check_job(rt: Runtime, sub_id: uuid.UUID) -> uuid.UUID:
    """A queued check job of the subscription, as the scheduler's tick makes it."""
    with rt.db.session() as session:
        sub = subscription_rows.get(session, sub_id, None)
        assert sub is not None
        (job,) = subscription_rows.add_checks(session, [sub], max_attempts=1)
    return job.id


def _bare_listing(url: str) -> int:
    """What every check must do: yt-dlp lists the feed flat, unprocessed."""
    params = base_params(generic_extractor=True) | {
        "skip_download": True,
        "extract_flat": "in_playlist",
    }
    with yt_dlp.YoutubeDL(params) as ydl:
        info = ydl.extract_info(url, download=False, process=False)
        return len(list(info.get("entries") or []))


def _cpu_ms(prepare: Callable[[], _T], work: Callable[[_T], object]) -> float:
    """Mean CPU time of this process per call of ``work``, over ``CHECKS`` calls, in ms;
    what ``prepare`` makes for each call is made before the clock runs."""
    spent = 0.0
    for _ in range(CHECKS):
        made = prepare()
        began = time.process_time()
        work(made)
        spent += time.process_time() - began
    return spent * 1000 / CHECKS


@contextmanager
def _statements(rt: Runtime) -> Iterator[dict[str, int]]:
    """Count the SQL statements and commits run on haul's engine meanwhile."""
    counts = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    engine = rt.db.engine
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        yield counts
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)


def _counted(rt: Runtime, sub_id: uuid.UUID) -> dict[str, int]:
    job_id = _check_job(rt, sub_id)
    with _statements(rt) as counts:
        outcome = run_check(rt, job_id)
    if outcome is None or not outcome.ok or outcome.new:
        raise RuntimeError(f"a check with nothing new found something: {outcome}")
    return counts


def _outcome(
    entries: int,
    small: int,
    haul: Sample,
    bare: Sample,
    counts: dict[int, dict[str, int]],
) -> Outcome:
    big, little = counts[entries], counts[small]
    constant = big == little
    figures = [
        Figure(
            "7 subscriptions",
            f"one check, {entries} entries, nothing new: worker CPU",
            "ms",
            haul,
            "bare yt-dlp flat listing",
            bare,
            haul.median / bare.median if bare.median else None,
            f"< {TARGET_MS:.0f} ms",
            haul.median < TARGET_MS,
            digits=0,
        ),
        Figure(
            "7 subscriptions",
            f"SQL per check ({entries} vs {small} entries)",
            "statements",
            Sample.of(big["statements"]),
            f"{little['statements']} at {small} entries",
            target="constant",
            digits=0,
            met=constant,
            miss="" if constant else "grows with the feed",
        ),
    ]
    body = (
        f"A check of a {entries}-entry RSS feed whose entries were all seen before: "
        f"{fmt(haul.median, 0)} ms of CPU (min–max {fmt(haul.low, 0)}–{fmt(haul.high, 0)}), "
        f"of which listing the feed with bare yt-dlp takes {fmt(bare.median, 0)} ms. "
        f"Statements and commits per check: {big['statements']} and {big['commits']} at "
        f"{entries} entries, {little['statements']} and {little['commits']} at {small}."
    )
    return Outcome(figures=figures, sections=[("Subscription check", body)])
