"""A webhook receiver on 127.0.0.1 for tests: it records every request and answers
what each path's script says.

Each request is kept with its headers, body and whether its signature verified
with the ``standardwebhooks`` reference library (given the secrets the test
registered), so tests check what a real receiver would accept.

Scripts, per path: ``answer(path, 500, 500, 500, then=204)`` answers 500 three
times, then 204 for good; without a script a path answers 204.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float
    #: The secret that verified the signature, or None when none did.
    verified_by: str | None

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """``with Receiver() as hooks: hooks.url("/a")`` → ``http://127.0.0.1:PORT/a``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._scripts: dict[str, deque[int]] = defaultdict(deque)
        self._then: dict[str, int] = {}
        self._secrets: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def trust(self, *secrets: str) -> None:
        """Secrets a signature may verify with (a receiver knows its sender's)."""
        with self._lock:
            self._secrets.extend(secrets)

    def answer(self, path: str, *statuses: int, then: int = 204) -> None:
        with self._lock:
            self._scripts[path].extend(statuses)
            self._then[path] = then

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def _respond(self, path: str) -> int:
        with self._lock:
            script = self._scripts[path]
            return script.popleft() if script else self._then.get(path, 204)

    def _verify(self, body: bytes, headers: dict[str, str]) -> str | None:
        with self._lock:
            secrets = list(self._secrets)
        for secret in secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            return secret
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._respond(self.path)
                verified = receiver._verify(body, headers)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, headers, body, status, time.monotonic(), verified)
                    )
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.url("/elsewhere"))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
