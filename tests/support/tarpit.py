"""A hostile webhook receiver on 127.0.0.1: it accepts every connection, then answers
never (``trickle=None``) or one byte of a valid answer every ``trickle`` seconds, so
no single read of the sender ever times out.

It counts the connections it accepted and those still open, so a test can see that
deliveries are stuck on it while other work goes on.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

from tests.support.waiting import wait_for

#: A valid answer, sent a byte at a time; at one byte a second it lasts over a minute.
ANSWER = b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"z" * 60 + b"\r\n\r\n"


class Tarpit:
    """``with Tarpit(trickle=0.5) as pit: pit.url("/hook")``."""

    def __init__(self, *, trickle: float | None = None) -> None:
        self.trickle = trickle
        self.accepted = 0
        self.open = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Tarpit:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        sent = 0
        try:
            while not self._stop.is_set():
                try:
                    if not conn.recv(65536):
                        return  # the sender gave up
                except TimeoutError:
                    pass
                if self.trickle is not None and sent < len(ANSWER):
                    conn.sendall(ANSWER[sent : sent + 1])
                    sent += 1
                    self._stop.wait(self.trickle)
        except OSError:
            return
        finally:
            conn.close()
            with self._lock:
                self.open -= 1

    def wait_open(self, count: int, timeout: float = 20) -> None:
        """Until at least ``count`` connections are held open at once."""
        wait_for(
            lambda: self.open >= count,
            timeout=timeout,
            what=f"the tarpit to hold {count} connections open",
        )
