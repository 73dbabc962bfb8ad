"""Enforce the egress policy at connect time, for the work of one job.

yt-dlp (and later the webhook sender) open their sockets deep inside HTTP
libraries; wrapping each library would miss a path. Python's audit hooks see
every ``socket.connect`` in the process with the address actually dialled, after
DNS resolution and on every redirect, so a check there catches rebinding,
redirects and HLS fragments alike.

The hook only judges connections made inside :func:`guarded`, on the thread that
entered it: the worker's own connections (PostgreSQL, RabbitMQ) are not a job's.
yt-dlp must therefore not start helper threads for a job (``concurrent_fragment_downloads``
stays 1). A refused connect raises :class:`EgressDenied` (an ``OSError``, which
HTTP libraries turn into their own errors); the denial is also kept on the
guard, so the caller can report the real reason rather than the library's wording:
:meth:`Guard.reported` logs the address for the operator and gives the tenant
:data:`~service.domain.egress.DENIED`, which names none.
"""

from __future__ import annotations

import socket
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from service.domain.egress import DENIED, EgressDenied, EgressPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["EgressDenied", "Guard", "guarded"]

log = structlog.get_logger(__name__)

_INET = (socket.AF_INET, socket.AF_INET6)
_active = threading.local()
_install_lock = threading.Lock()
_installed = False


@dataclass
class Guard:
    """The policy in force on this thread, and the connections it refused."""

    policy: EgressPolicy
    denials: list[str] = field(default_factory=list)
    _logged: bool = field(default=False, repr=False)
    #: Called with each socket about to connect, once the policy allowed it (a webhook
    #: attempt keeps it to shut it down when the attempt's whole time is up).
    on_connect: Callable[[socket.socket], None] | None = None

    @property
    def denied(self) -> str | None:
        """The first refusal, if any, naming the address: for the operator's eyes only."""
        return self.denials[0] if self.denials else None

    def reported(self) -> str | None:
        """What a tenant may read of a refusal (None if there was none); the address goes
        to the operator's log, one line per guarded block."""
        if not self.denials:
            return None
        if not self._logged:
            self._logged = True
            log.warning("egress denied", reason=self.denials[0], refused=len(self.denials))
        return DENIED


@contextmanager
def guarded(
    policy: EgressPolicy, *, on_connect: Callable[[socket.socket], None] | None = None
) -> Iterator[Guard]:
    """Judge every connection this thread makes until the block ends."""
    _install()
    outer = getattr(_active, "guard", None)
    guard = Guard(policy, on_connect=on_connect)
    _active.guard = guard
    try:
        yield guard
    finally:
        _active.guard = outer


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    guard: Guard | None = getattr(_active, "guard", None)
    if guard is None:
        return
    sock, address = args
    if getattr(sock, "family", None) not in _INET or not isinstance(address, tuple):
        return
    host, port = address[0], address[1]
    try:
        guard.policy.check(str(host), int(port))
    except EgressDenied as exc:
        guard.denials.append(str(exc))
        raise
    except ValueError:
        # Not an IP address: an unresolved name was passed to connect(). Resolve it
        # here and judge every address it could reach.
        for info in socket.getaddrinfo(str(host), int(port), type=socket.SOCK_STREAM):
            try:
                guard.policy.check(str(info[4][0]), int(port))
            except EgressDenied as exc:
                guard.denials.append(str(exc))
                raise
    if guard.on_connect is not None:
        guard.on_connect(sock)


def _install() -> None:
    """Add the audit hook once per process (hooks cannot be removed; it is cheap when idle)."""
    global _installed
    with _install_lock:
        if not _installed:
            sys.addaudithook(_audit)
            _installed = True
