"""One webhook POST: short timeouts, no redirects, no proxies, inside the egress policy.

The connection is made inside :func:`service.egress.guarded`, so the address
actually dialled (after DNS, on this thread) is judged exactly as a download's
would be. Redirects are not followed: a 3xx is a failed attempt, because a
receiver that moved must be reconfigured, and following it would let an
endpoint send haul's signed events anywhere. ``trust_env=False`` keeps an
``HTTP_PROXY`` of the worker's environment from routing around the policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from service.egress import guarded

if TYPE_CHECKING:
    from service.domain.egress import EgressPolicy

#: A receiver's answer is read up to this many bytes, then dropped: only the status counts.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """How one attempt went."""

    status_code: int | None
    latency_ms: int
    error: str | None = None
    #: The egress policy refused the connection: retrying cannot help.
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def post(
    url: str, body: str, headers: dict[str, str], *, policy: EgressPolicy, timeout: float
) -> Answer:
    """POST ``body`` to ``url``; any 2xx is success, anything else (3xx too) a failure."""
    started = time.monotonic()
    with guarded(policy) as guard:
        try:
            with (
                httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
                client.stream("POST", url, content=body.encode(), headers=headers) as response,
            ):
                _drain(response, deadline=started + timeout)
                status = response.status_code
        except httpx.HTTPError as exc:
            latency = _ms_since(started)
            if (denied := guard.reported()) is not None:
                return Answer(None, latency, denied, refused=True)
            return Answer(None, latency, _describe(exc))
    latency = _ms_since(started)
    if 200 <= status < 300:
        return Answer(status, latency)
    note = " (redirects are not followed)" if 300 <= status < 400 else ""
    return Answer(status, latency, f"HTTP {status}{note}")


def _drain(response: httpx.Response, *, deadline: float) -> None:
    """Read a little of the answer (so the connection ends cleanly), never for long."""
    seen = 0
    for chunk in response.iter_raw():
        seen += len(chunk)
        if seen >= MAX_ANSWER_BYTES or time.monotonic() > deadline:
            return


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
