"""Local addresses for tests: free ports, the egress allow-list that admits the media
server on 127.0.0.1 (egress tests put canaries on other loopback addresses), and a
listener that records connections."""

from __future__ import annotations

import socket
import threading

TEST_EGRESS_ALLOW = "127.0.0.1/32"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Listener:
    """A TCP server on 127.0.0.1 that records who connected and hangs up at once.

    It plays a proxy or a media server on a protocol nobody should speak (RTMP, RTSP):
    a test points a job at it and checks that nothing ever dialled it.
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._lock = threading.Lock()
        self._peers: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="listener", daemon=True)

    @property
    def connections(self) -> list[tuple[str, int]]:
        """The peers that connected so far."""
        with self._lock:
            return list(self._peers)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._peers.append(peer)
            conn.close()

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
