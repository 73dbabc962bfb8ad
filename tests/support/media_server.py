"""A local HTTP server that plays the part of "the internet" in tests (and in ``just demo``).

Tests have no network, so they generate small media files with ffmpeg
(`make_media`) and serve them from 127.0.0.1 (`MediaServer`), including the
awkward cases a downloader must survive: slow, flaky, redirecting and failing
endpoints. ``python -m tests.support.media_server --port N DIR`` serves the demo's
sample clip and feed the same way, for a person trying haul without internet.

Routes (GET and HEAD):

- ``/media/<name>``: a file from the media directory, with Range support.
- ``/slow/<name>?bps=N``: the same, throttled to N bytes per second; with ``key=K`` and
  ``times=T``, only the first T GETs of ``K`` are (a probe's GET counts), later ones are not.
- ``/flaky/<key>/<name>?fail=N&after=M``: the file for the first M GETs of ``key``
  (default 0; a probe's GET), 503 for the next N, then the file again.
- ``/redirect/<name>``: 302 to ``/media/<name>``.
- ``/busy/<name>``: the file, until the server is told to throttle (``throttle_after``);
  then 429 to everyone until it recovers.
- ``/status/<code>``: an empty-ish reply with that status (429/503 add Retry-After: 1).
- ``/page.html?src=URL``: an HTML page with a ``<video>`` pointing at ``/media/clip.mp4``
  (or at ``URL``: a stream on another protocol, say).
- ``/feed.rss``: an RSS feed whose three items enclose a.mp4, b.mp4 and c.mp4.
- ``/feed-big.rss?n=N``: N items cycling over a/b/c, each with a distinct URL.
- ``/feed-of.rss?entry=PATH&entry=…``: one item per server path given, any route
  (``/slow/…``, ``/flaky/…``, a 404): a playlist whose entries behave differently.
- ``/feed-live/<key>.rss``: a feed whose items a test sets and grows between requests
  (``MediaServer.set_feed``), each with a guid, title, duration and date; a key never
  set answers 404. ``MediaServer.fail_feed`` makes its next GETs answer 503,
  ``stall_feed`` holds its next GET before answering.
- ``/gone.mp4``: 410; anything else: 404.
- ``/away?to=URL``: 302 to any URL (an allowed server sending the client elsewhere).
- ``/hls.m3u8?base=URL``: an HLS media playlist whose segments are ``URL/media/a.mp4``…
- ``/endless.mp4``: video/mp4 bytes without end and without Content-Length.
- ``/endless.html``, ``/endless.m3u8``: an HTML page, an HLS media playlist (``#EXTM3U``,
  then segment after segment) without end and without Content-Length; what each sent is
  counted (``MediaServer.sent``).
- ``/endless-master.m3u8``: an HLS master playlist whose one variant is ``/endless.m3u8``
  (read by the HLS downloader itself, not by the extractor).
- ``/nolength/<name>``: the file without a Content-Length header.
- ``/hls-aes/index.m3u8``: clip.mp4 as an AES-128 encrypted HLS stream (ffmpeg's hls
  muxer), its key at ``/hls-aes/key.bin`` (`HLS_KEY`), segments ``/hls-aes/segN.ts``.
- ``/members/<name>``: a sign-in wall. 403 unless the request carries the cookie
  `MEMBER_COOKIE`; with it, the file, and a `ROTATED_COOKIE` set as sites rotate theirs.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

DEFAULT_BPS = 200_000
_CHUNK = 64 * 1024
_CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
}
_NAME = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"

_MP4 = shlex.split(
    "-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -b:a 64k -movflags +faststart -f mp4"
)
_WEBM = shlex.split(
    "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 300k -c:a libopus -b:a 48k -f webm"
)

#: The endless text routes: content type, what comes first, what repeats (about 64 KiB).
_ENDLESS_HTML = (
    "text/html; charset=utf-8",
    b"<!DOCTYPE html>\n<html><head><title>Endless</title></head><body>\n",
    b"<p>and more</p>\n" * 4096,
)
_ENDLESS_M3U8 = (
    _CONTENT_TYPES[".m3u8"],
    b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n",
    b"#EXTINF:2.0,\nseg.ts\n" * 3276,
)

# name -> (seconds, sine frequency in Hz, codec arguments)
MEDIA: dict[str, tuple[int, int, list[str]]] = {
    "clip.mp4": (3, 440, _MP4),
    "clip.webm": (3, 440, _WEBM),
    "long.mp4": (30, 330, _MP4),
    "a.mp4": (2, 220, _MP4),
    "b.mp4": (2, 550, _MP4),
    "c.mp4": (2, 880, _MP4),
}


#: What ``just demo`` serves: the clip, and the entries of ``/feed.rss``.
DEMO_MEDIA = ("clip.mp4", "a.mp4", "b.mp4", "c.mp4")


def make_media(directory: Path, names: tuple[str, ...] | None = None) -> None:
    """Create the test media files (or only ``names``) in `directory`, skipping those there.

    Each file is written under a temporary name and renamed into place, so an
    interrupted run never leaves a truncated file that later runs would trust.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, (seconds, freq, codec) in MEDIA.items():
        if names is not None and name not in names:
            continue
        target = directory / name
        if target.exists():
            continue
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        video = f"testsrc=size=320x240:rate=15:duration={seconds}"
        audio = f"sine=frequency={freq}:duration={seconds}"
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", video]
        cmd += ["-f", "lavfi", "-i", audio, *codec, str(tmp)]
        try:
            subprocess.run(cmd, check=True)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    if not (directory / "hls-aes" / "index.m3u8").exists():
        make_encrypted_hls(directory / "clip.mp4", directory / "hls-aes")


#: The AES-128 key of the encrypted HLS stream, served as ``/hls-aes/key.bin``.
HLS_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


#: The sign-in cookie ``/members/…`` asks for (name, value): random per run, so a test can
#: look for the value anywhere it must not be.
MEMBER_COOKIE = ("haul_member", f"member-{secrets.token_hex(16)}")
#: The cookie ``/members/…`` sets on a signed-in request, as a site rotates its session.
ROTATED_COOKIE = ("haul_session", f"rotated-{secrets.token_hex(16)}")


def make_encrypted_hls(source: Path, target: Path) -> None:
    """Cut `source` into AES-128 encrypted one-second HLS segments in `target`.

    The playlist names the key and the segments by relative URIs, so it works on any
    port; the directory appears whole or not at all.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / "key.bin").write_bytes(HLS_KEY)
        # key info file: the URI written into the playlist, then the key file to read
        (tmp / "key.info").write_text(f"key.bin\n{tmp / 'key.bin'}\n")
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source)]
        # a keyframe every second (15 fps), so the stream is cut into several segments
        cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-c:a", "copy"]
        cmd += ["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"]
        cmd += ["-hls_key_info_file", str(tmp / "key.info")]
        cmd += ["-hls_segment_filename", str(tmp / "seg%d.ts"), str(tmp / "index.m3u8")]
        subprocess.run(cmd, check=True)
        (tmp / "key.info").unlink()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Resolve a single ``bytes=`` Range header to an inclusive (start, end).

    Returns None when there is no usable range (serve the whole file, as RFC 9110
    says for malformed ranges); raises ValueError when it is unsatisfiable (416).
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # suffix range: the last N bytes
        if not int(last) or not size:
            raise ValueError(header)
        return max(size - int(last), 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise ValueError(header)
    return start, min(int(last), size - 1) if last else size - 1


class _Server(ThreadingHTTPServer):
    """The HTTP server plus the shared state its request handlers need."""

    daemon_threads = True

    def __init__(self, media_dir: Path, host: str, port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.media_dir = media_dir
        self.base_url = f"http://{host}:{self.server_address[1]}"
        self.lock = threading.Lock()
        self.hits: Counter[tuple[str, str]] = Counter()
        self.flaky_gets: Counter[str] = Counter()
        self.slow_gets: Counter[str] = Counter()
        self.live_feeds: dict[str, list[FeedItem]] = {}
        #: ``/feed-live/<key>.rss``: GETs still to answer 503, and the next GET's stall (s).
        self.feed_failures: Counter[str] = Counter()
        self.feed_stalls: dict[str, float] = {}
        #: Bytes written by the endless routes, by path, until the client hung up.
        self.sent: Counter[str] = Counter()
        self.stopping = threading.Event()
        #: ``/busy/…``: GETs served before the site starts answering 429 (None: never).
        self.busy_after: int | None = None
        self.busy_gets = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # don't let an idle client pin a thread forever

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: request logs would only clutter pytest output."""

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self.server.lock:
            self.server.hits[(self.command, url.path)] += 1
        routes: list[tuple[str, Callable[[re.Match[str]], None]]] = [
            (rf"/media/({_NAME})", lambda m: self._file(m[1])),
            (rf"/slow/({_NAME})", lambda m: self._slow(m[1], query)),
            (rf"/flaky/({_NAME})/({_NAME})", lambda m: self._flaky(m[1], m[2], query)),
            (rf"/redirect/({_NAME})", lambda m: self._redirect(f"/media/{m[1]}")),
            (r"/status/(\d{3})", lambda m: self._status(int(m[1]))),
            (r"/page\.html", lambda m: self._page(query.get("src"))),
            (r"/feed\.rss", lambda m: self._feed(["/media/a.mp4", "/media/b.mp4", "/media/c.mp4"])),
            (r"/feed-big\.rss", lambda m: self._big_feed(_int(query, "n", 3))),
            (r"/feed-of\.rss", lambda m: self._feed(parse_qs(url.query).get("entry", []))),
            (rf"/feed-live/({_NAME})\.rss", lambda m: self._live_feed(m[1])),
            (r"/gone\.mp4", lambda m: self._status(HTTPStatus.GONE)),
            (r"/away", lambda m: self._redirect_to(query.get("to", "/"))),
            (r"/hls\.m3u8", lambda m: self._hls(query.get("base", self.server.base_url))),
            (r"/endless\.mp4", lambda m: self._endless("video/mp4", b"", bytes(_CHUNK))),
            (r"/endless\.html", lambda m: self._endless(*_ENDLESS_HTML)),
            (r"/endless\.m3u8", lambda m: self._endless(*_ENDLESS_M3U8)),
            (r"/endless-master\.m3u8", lambda m: self._endless_master()),
            (rf"/nolength/({_NAME})", lambda m: self._file(m[1], length=False)),
            (rf"/hls-aes/({_NAME})", lambda m: self._file(f"hls-aes/{m[1]}")),
            (rf"/members/({_NAME})", lambda m: self._members(m[1])),
            (rf"/busy/({_NAME})", lambda m: self._busy(m[1])),
        ]
        for pattern, handle in routes:
            match = re.fullmatch(pattern, url.path)
            if match:
                handle(match)
                return
        self._status(HTTPStatus.NOT_FOUND)

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def _members(self, name: str) -> None:
        """The file for a request with the member cookie; 403 for anyone else."""
        sent = SimpleCookie(self.headers.get("Cookie") or "")
        member = sent.get(MEMBER_COOKIE[0])
        if member is None or member.value != MEMBER_COOKIE[1]:
            self._reply(HTTPStatus.FORBIDDEN, b"sign in to watch\n", "text/plain")
            return
        rotated = f"{ROTATED_COOKIE[0]}={ROTATED_COOKIE[1]}; Path=/; Max-Age=86400"
        self._file(name, headers={"Set-Cookie": rotated})

    def _busy(self, name: str) -> None:
        """A site that throttles: the file, until ``busy_after`` GETs were served; then 429."""
        with self.server.lock:
            limit = self.server.busy_after
            throttled = limit is not None and self.server.busy_gets >= limit
            if not throttled and self.command == "GET":
                self.server.busy_gets += 1
        if throttled:
            self._reply(HTTPStatus.TOO_MANY_REQUESTS, b"Too Many Requests\n", "text/plain")
            return
        self._file(name)

    def _status(self, code: int) -> None:
        if not 200 <= code <= 599:
            code = HTTPStatus.NOT_FOUND
        extra = {"Retry-After": "1"} if code in (429, 503) else {}
        self._reply(code, f"status {code}\n".encode(), "text/plain", extra)

    def _redirect(self, path: str) -> None:
        self._reply(HTTPStatus.FOUND, b"", "text/plain", {"Location": self.server.base_url + path})

    def _redirect_to(self, url: str) -> None:
        self._reply(HTTPStatus.FOUND, b"", "text/plain", {"Location": url})

    def _hls(self, base: str) -> None:
        segments = "".join(f"#EXTINF:2.0,\n{base}/media/{n}\n" for n in ("a.mp4", "b.mp4"))
        body = (
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"{segments}#EXT-X-ENDLIST\n"
        )
        self._reply(HTTPStatus.OK, body.encode(), "application/vnd.apple.mpegurl")

    def _endless(self, content_type: str, head: bytes, chunk: bytes) -> None:
        """``head``, then ``chunk`` again and again until the client hangs up."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.close_connection = True
        if self.command != "GET":
            return
        path = urlsplit(self.path).path
        try:
            self.wfile.write(head)
            while not self.server.stopping.is_set():
                self.wfile.write(chunk)
                with self.server.lock:
                    self.server.sent[path] += len(chunk)
        except OSError:  # the client hung up, or stopped reading (the handler's timeout)
            pass

    def _endless_master(self) -> None:
        body = (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=320x240\n"
            f"{self.server.base_url}/endless.m3u8\n"
        )
        self._reply(HTTPStatus.OK, body.encode(), _CONTENT_TYPES[".m3u8"])

    def _slow(self, name: str, query: dict[str, str]) -> None:
        """Throttled; with a ``key``, only its first ``times`` GETs (a HEAD as the next GET)."""
        bps: int | None = _int(query, "bps", DEFAULT_BPS)
        key = query.get("key")
        if key is not None:
            with self.server.lock:
                seen = self.server.slow_gets[key]
                if self.command == "GET":
                    self.server.slow_gets[key] += 1
            if seen >= _int(query, "times", 1):
                bps = None
        self._file(name, bps)

    def _flaky(self, key: str, name: str, query: dict[str, str]) -> None:
        """Fail GETs `after`..`after+fail-1` of `key`; a HEAD answers as the next GET would."""
        fail = _int(query, "fail", 1)
        after = _int(query, "after", 0)
        with self.server.lock:
            seen = self.server.flaky_gets[key]
            if self.command == "GET":
                self.server.flaky_gets[key] += 1
        if after <= seen < after + fail:
            self._status(HTTPStatus.SERVICE_UNAVAILABLE)
        else:
            self._file(name)

    def _file(
        self,
        name: str,
        bps: int | None = None,
        *,
        length: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        path = self.server.media_dir / name
        if not path.is_file():
            self._status(HTTPStatus.NOT_FOUND)
            return
        size = path.stat().st_size
        try:
            wanted = parse_range(self.headers.get("Range"), size) if length else None
        except ValueError:
            unsatisfiable = {"Content-Range": f"bytes */{size}"}
            self._reply(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", "text/plain", unsatisfiable
            )
            return
        start, end = wanted or (0, size - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK)
        content_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        for header, value in (headers or {}).items():
            self.send_header(header, value)
        self.end_headers()
        if self.command == "GET":
            self._send_bytes(path, start, end - start + 1, bps)

    def _send_bytes(self, path: Path, start: int, length: int, bps: int | None) -> None:
        """Copy a file slice to the client, paced to `bps` when given.

        A client that hangs up (yt-dlp aborting, a test cancelling) or a server
        that is stopping ends the copy silently.
        """
        chunk = max(1, bps // 20) if bps else _CHUNK
        sent = 0
        began = time.monotonic()
        try:
            with path.open("rb") as f:
                f.seek(start)
                while sent < length and not self.server.stopping.is_set():
                    data = f.read(min(chunk, length - sent))
                    if not data:
                        break
                    self.wfile.write(data)
                    sent += len(data)
                    if bps:
                        self.server.stopping.wait(max(0.0, began + sent / bps - time.monotonic()))
        except ConnectionError:
            pass
        self.close_connection = True

    def _page(self, source: str | None = None) -> None:
        src = quoteattr(source or f"{self.server.base_url}/media/clip.mp4")
        html = (
            "<!DOCTYPE html>\n<html><head><title>Test Page Title</title></head>\n"
            f'<body><video controls><source src={src} type="video/mp4"></video>'
            "</body></html>\n"
        )
        self._reply(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")

    def _live_feed(self, key: str) -> None:
        with self.server.lock:
            items = list(self.server.live_feeds.get(key, []))
            failing = self.command == "GET" and self.server.feed_failures[key] > 0
            if failing:
                self.server.feed_failures[key] -= 1
            stall = self.server.feed_stalls.pop(key, None) if self.command == "GET" else None
        if failing:
            self._status(HTTPStatus.SERVICE_UNAVAILABLE)
            return
        if stall is not None:
            self.server.stopping.wait(stall)
        if key not in self.server.live_feeds:
            self._status(HTTPStatus.NOT_FOUND)
            return
        rendered = "".join(item.xml(self.server.base_url) for item in items)
        rss = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>'
            f"<title>Live {escape(key)}</title><link>{self.server.base_url}/</link>"
            f"<description>A growing feed</description>{rendered}</channel></rss>\n"
        )
        self._reply(HTTPStatus.OK, rss.encode(), "application/rss+xml; charset=utf-8")

    def _big_feed(self, n: int) -> None:
        names = ["a.mp4", "b.mp4", "c.mp4"]
        self._feed([f"/media/{names[i % 3]}?i={i}" for i in range(n)])

    def _feed(self, targets: list[str]) -> None:
        """An RSS 2.0 feed with one item per server path; enclosure URLs are absolute,
        since yt-dlp does not resolve relative ones."""
        items = []
        for i, target in enumerate(targets):
            path = self.server.media_dir / urlsplit(target).path.rsplit("/", 1)[-1]
            size = path.stat().st_size if path.is_file() else 0
            url = quoteattr(f"{self.server.base_url}{target}")
            items.append(
                f"<item><title>Item {i + 1}</title>"
                f'<enclosure url={url} type="video/mp4" length="{size}"/></item>'
            )
        rss = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            "<title>Test Feed</title><link>" + self.server.base_url + "/</link>"
            "<description>Test feed</description>" + "".join(items) + "</channel></rss>\n"
        )
        self._reply(HTTPStatus.OK, rss.encode(), "application/rss+xml; charset=utf-8")


@dataclass(frozen=True)
class FeedItem:
    """One item of a live feed: a guid, the server path it encloses, and what filters see."""

    guid: str
    path: str
    title: str
    duration_s: int | None = None
    published: datetime | None = None

    def xml(self, base_url: str) -> str:
        extra = f"<itunes:duration>{self.duration_s}</itunes:duration>" if self.duration_s else ""
        if self.published is not None:
            extra += f"<pubDate>{format_datetime(self.published, usegmt=True)}</pubDate>"
        return (
            f"<item><title>{escape(self.title)}</title><guid>{escape(self.guid)}</guid>"
            f'<enclosure url={quoteattr(base_url + self.path)} type="video/mp4"/>{extra}</item>'
        )


def _int(query: dict[str, str], key: str, default: int) -> int:
    value = query.get(key, "")
    return int(value) if value.isdigit() else default


class MediaServer:
    """Serves a media directory (see `make_media`) on a random port of ``host``.

    Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(self, media_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.media_dir = media_dir
        self.host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, available once started."""
        if self._server is None:
            raise RuntimeError("MediaServer is not started")
        return self._server.base_url

    def url(self, path: str) -> str:
        """An absolute URL for a server path such as ``/media/clip.mp4``."""
        return self.base_url + "/" + path.lstrip("/")

    def hits(self, path: str, method: str | None = None) -> int:
        """How many requests arrived for `path` (query ignored), optionally for one method."""
        path = urlsplit(path).path
        if self._server is None:
            return 0
        with self._server.lock:
            return sum(
                n for (m, p), n in self._server.hits.items() if p == path and method in (None, m)
            )

    def sent(self, path: str) -> int:
        """Bytes an endless route has written to `path`'s clients so far."""
        if self._server is None:
            return 0
        with self._server.lock:
            return self._server.sent[path]

    def set_feed(self, key: str, items: list[FeedItem]) -> str:
        """Serve ``items`` (newest first) at ``/feed-live/<key>.rss``; its URL."""
        if self._server is None:
            raise RuntimeError("MediaServer is not started")
        with self._server.lock:
            self._server.live_feeds[key] = list(items)
        return self.url(f"/feed-live/{key}.rss")

    def fail_feed(self, key: str, times: int) -> None:
        """The next ``times`` GETs of ``/feed-live/<key>.rss`` answer 503 (then it serves)."""
        if self._server is None:
            raise RuntimeError("MediaServer is not started")
        with self._server.lock:
            self._server.feed_failures[key] = times

    def stall_feed(self, key: str, seconds: float) -> None:
        """The next GET of ``/feed-live/<key>.rss`` waits ``seconds`` before answering."""
        if self._server is None:
            raise RuntimeError("MediaServer is not started")
        with self._server.lock:
            self._server.feed_stalls[key] = seconds

    def total_hits(self) -> int:
        """Every request that arrived, whatever its path: a canary must see none."""
        if self._server is None:
            return 0
        with self._server.lock:
            return sum(self._server.hits.values())

    def throttle_after(self, gets: int | None) -> None:
        """``/busy/…`` serves ``gets`` more GETs, then answers 429 (None: recovered)."""
        if self._server is None:
            raise RuntimeError("MediaServer is not started")
        with self._server.lock:
            self._server.busy_after = None if gets is None else self._server.busy_gets + gets

    def busy_gets(self) -> int:
        """GETs of ``/busy/…`` served with the file so far."""
        if self._server is None:
            return 0
        with self._server.lock:
            return self._server.busy_gets

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("MediaServer is not started")
        return int(self._server.server_address[1])

    def start(self) -> MediaServer:
        self._server = _Server(self.media_dir, self.host, self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="media-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; in-flight slow downloads are cut off promptly."""
        if self._server is None or self._thread is None:
            return
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._thread = None

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``just demo``'s sample server: the clip and feed on 127.0.0.1 until stopped."""
    parser = argparse.ArgumentParser(description="serve haul's demo clip and feed on 127.0.0.1")
    parser.add_argument("directory", type=Path, help="where the generated media are kept")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    make_media(args.directory, DEMO_MEDIA)
    with MediaServer(args.directory, port=args.port) as server:
        print(f"demo media on {server.url('/media/clip.mp4')} and {server.url('/feed.rss')}")
        threading.Event().wait()  # until SIGTERM or Ctrl-C


if __name__ == "__main__":
    main()
