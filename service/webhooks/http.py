"""One webhook POST: one deadline for the whole attempt, no redirects, no proxies, inside
the egress policy.

The attempt, connect, send, answer and drain together, ends ``timeout`` seconds
after it began, however the receiver behaves: httpx's timeouts bound each read,
so a receiver trickling a byte a second could hold a thread forever; a timer
shuts the attempt's sockets down at the deadline instead, which wakes the
blocked read at once (only name resolution, before any socket exists, is left to
the system resolver's own timeouts).

The connection is made inside :func:`service.egress.guarded`, so the address
actually dialled (after DNS, on this thread) is judged exactly as a download's
would be. Redirects are not followed: a 3xx is a failed attempt, because a
receiver that moved must be reconfigured, and following it would let an
endpoint send haul's signed events anywhere. ``trust_env=False`` keeps an
``HTTP_PROXY`` of the worker's environment from routing around the policy.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
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
    with _Deadline(timeout) as deadline, guarded(policy, on_connect=deadline.track) as guard:
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
            if deadline.expired:
                return Answer(None, latency, f"timed out: no full answer within {timeout:g} s")
            return Answer(None, latency, _describe(exc))
    latency = _ms_since(started)
    if 200 <= status < 300:
        return Answer(status, latency)
    note = " (redirects are not followed)" if 300 <= status < 400 else ""
    return Answer(status, latency, f"HTTP {status}{note}")


@dataclass
class _Deadline:
    """Shuts down every socket of one attempt when its time is up (see the module doc)."""

    seconds: float
    expired: bool = False
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _timer: threading.Timer | None = None

    def __enter__(self) -> _Deadline:
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._timer is not None
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def track(self, sock: socket.socket) -> None:
        """Called (by the egress guard) with each socket the attempt connects."""
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake whatever blocks on ``sock``; its owner still closes it."""
    with contextlib.suppress(OSError):  # not connected yet, or already closed
        sock.shutdown(socket.SHUT_RDWR)


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
