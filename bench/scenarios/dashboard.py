"""8. The dashboard's first render: the jobs page of a client with 100,000 jobs.

A person signs in (the sign-in form, its CSRF token and the session cookie, as a
browser does) and loads ``/jobs``: the submit form and the newest page of their
jobs, rendered by the same ``list_jobs`` as the API. The table is generated as in
scenario 4 (``bench.table_data``; the big client owns half of it). Each figure is a
keep-alive round trip on loopback through uvicorn, so it bounds the server-side time
from above. Baseline: ``GET /v1/jobs`` (the same query and page size, as JSON) in the
same run.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx

from bench import table_data
from bench.plans import timed
from bench.report import Figure, Outcome
from bench.stack import HaulStack
from bench.stats import Sample, fmt, percentile
from service.web.jobs import PAGE_SIZE

if TYPE_CHECKING:
    from bench.sizes import Sizes
    from bench.stack import Context

TITLE = "8. Dashboard first render"
TARGET_MS = 50.0
REPEATS = 30
_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def run(ctx: Context, sizes: Sizes) -> Outcome:
    rows = sizes.dashboard_jobs * 2  # the big client owns half the generated table
    stack = HaulStack(ctx, "dashboard")
    try:
        key = stack.create_key("big")
        table_data.generate(stack.database, rows, str(stack.client_id()))
        owned = stack.query("SELECT count(*) FROM jobs WHERE client_id = %s", stack.client_id())
        stack.start_api()
        with httpx.Client(base_url=stack.base_url, timeout=10) as browser:
            _sign_in(browser, key)
            page = timed(lambda: _get(browser, "/jobs"), REPEATS)
        with httpx.Client(
            base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as api:
            json = timed(lambda: _get(api, f"/v1/jobs?limit={PAGE_SIZE}"), REPEATS)
    finally:
        stack.close()
    return _outcome(sizes, int(owned[0][0]), page, json)


def _sign_in(browser: httpx.Client, key: str) -> None:
    """What a browser does: fetch the form (token and cookie), post the key, keep the session."""
    form = browser.get("/signin")
    form.raise_for_status()
    found = _TOKEN.search(form.text)
    if found is None:
        raise RuntimeError("the sign-in page carries no CSRF token")
    done = browser.post("/signin", data={"key": key, "_csrf": found.group(1)})
    if done.status_code != 303 or done.headers.get("location") != "/jobs":
        raise RuntimeError(f"sign-in failed: {done.status_code}")


def _get(http: httpx.Client, path: str) -> None:
    answer = http.get(path)
    answer.raise_for_status()
    if path == "/jobs" and 'id="jobs"' not in answer.text:
        raise RuntimeError("the jobs page did not list the client's jobs")


def _outcome(sizes: Sizes, owned: int, page: list[float], json: list[float]) -> Outcome:
    value, base = Sample(tuple(page)), Sample(tuple(json))
    met = value.median < TARGET_MS
    figure = Figure(
        "8 dashboard",
        f"GET /jobs, first render, {owned:,} jobs",
        "ms",
        value,
        f"GET /v1/jobs?limit={PAGE_SIZE} (same page, JSON)",
        base,
        value.median / base.median,
        f"< {TARGET_MS:.0f} ms",
        None if sizes.smoke else met,
        "" if met else f"{value.median - TARGET_MS:.1f} ms over",
    )
    method = (
        f"The client owns {owned:,} of {owned * 2:,} generated jobs (`bench/table_data.py`). "
        "Signed in through the form as a browser is (CSRF token, session cookie); "
        f"{REPEATS} page loads after 3 untimed ones on one keep-alive connection, median "
        "(min–max), each a full round trip through uvicorn on loopback: an upper bound on "
        f"the server-side time. p95: {fmt(percentile(page, 95))} ms (page), "
        f"{fmt(percentile(json, 95))} ms (JSON)."
    )
    return Outcome([figure], [("method", method)])
