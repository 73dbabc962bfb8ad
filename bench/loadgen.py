"""A small HTTP/1.1 load generator: keep-alive connections over asyncio streams.

Far lighter than an HTTP client library, so on a 2-core machine the server, not
the generator, sets the pace. Two modes:

* closed loop: ``connections`` clients each send the next request as soon as the
  last one was answered, for ``duration`` seconds: the throughput at saturation;
* open loop: requests start on a fixed schedule (``rate`` per second) whatever the
  server does, and latency counts from the scheduled start, so a stalled server is
  not hidden by requests that were never sent (no coordinated omission).

``python -m bench.loadgen '<json config>'`` prints one JSON line of results.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.stats import percentile


@dataclass(frozen=True)
class Target:
    url: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    def request(self, body: bytes) -> bytes:
        path = urlsplit(self.url).path or "/"
        lines = [f"{self.method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection; reopens itself when the server closes it."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """One request and its answer; a kept-alive connection the server closed while it
        sat idle (uvicorn closes them after 5 s) is reopened once, as browsers do."""
        reused = self.writer is not None
        if not reused:
            await self._open()
        try:
            return await self._exchange(raw)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
            self.close()
            await self._open()
            return await self._exchange(raw)

    async def _exchange(self, raw: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = (line.partition(":") for line in lines[1:])
        headers = {k.strip().lower(): v.strip() for k, _, v in fields}
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0

    def summary(self) -> dict[str, Any]:
        ok = sum(n for s, n in self.statuses.items() if 200 <= s < 300)
        ms = [x * 1000 for x in self.latencies]
        return {
            "completed": len(self.latencies),
            "ok": ok,
            "errors": len(self.latencies) - ok,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "elapsed": self.elapsed,
            "throughput": ok / self.elapsed if self.elapsed else 0.0,
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "max_ms": max(ms) if ms else float("nan"),
        }


async def closed_loop(target: Target, body: bytes, connections: int, duration: float) -> Tally:
    tally = Tally()
    raw = target.request(body)
    start = time.perf_counter()
    deadline = start + duration

    async def client() -> None:
        conn = Connection(target)
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                status, _ = await conn.send(raw)
                tally.latencies.append(time.perf_counter() - sent)
                tally.statuses[status] += 1
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    tally.elapsed = time.perf_counter() - start
    return tally


async def open_loop(target: Target, body: bytes, rate: float, duration: float) -> Tally:
    tally = Tally()
    raw = target.request(body)
    idle: list[Connection] = []
    opened: list[Connection] = []
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        if idle:
            conn = idle.pop()
        else:
            conn = Connection(target)
            opened.append(conn)
        status, _ = await conn.send(raw)
        tally.latencies.append(time.perf_counter() - scheduled)
        tally.statuses[status] += 1
        idle.append(conn)

    await asyncio.gather(*(one(i) for i in range(int(rate * duration))))
    tally.elapsed = time.perf_counter() - start
    for conn in opened:
        conn.close()
    return tally


async def burst(target: Target, bodies: list[bytes], connections: int) -> list[tuple[int, bytes]]:
    """Send every body once, ``connections`` at a time; answers in the bodies' order."""
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(bodies)
    pending = iter(enumerate(bodies))

    async def client() -> None:
        conn = Connection(target)
        try:
            for i, body in pending:
                answers[i] = await conn.send(target.request(body))
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return answers


def main(config: dict[str, Any]) -> dict[str, Any]:
    target = Target(config["url"], headers=config.get("headers", {}))
    body = json.dumps(config["body"]).encode()
    if config["mode"] == "closed":
        run = closed_loop(target, body, config["connections"], config["duration"])
    else:
        run = open_loop(target, body, config["rate"], config["duration"])
    return asyncio.run(run).summary()


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
