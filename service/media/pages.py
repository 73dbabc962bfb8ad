"""Bounded reads of pages and manifests: no response read whole passes ``HAUL_MAX_PAGE_BYTES``.

yt-dlp's extractors read a page, an API answer or a manifest with ``Response.read()``:
the whole body, into memory (``_webpage_read_content``). So does the HLS downloader
with a media playlist and with the keys it decrypts by. A site answering with an
endless body grows the worker without bound: an endless ``text/html`` page was read
to ~3 GB in 80 s, until the job died of ``OverflowError``. ``HaulYDL.urlopen`` passes
every response (and the one an ``HTTPError`` carries) through :class:`Capped`: reading the
rest of the body (``read()``, ``read(None)``, ``read(-1)``) returns at most what is
left of the cap, counting what was read before; one byte more and the response is
closed and :class:`~service.media.refusals.PageTooLarge` raised.

A read of a given size is left alone: that is how yt-dlp's HTTP downloader streams
media and fragments to disk, a block at a time, bounded by ``HAUL_MAX_FILE_BYTES``
through the progress hook (``service/media/download.py``), and how the generic
extractor peeks at a page's first 512 bytes. Such bytes still count toward a later
whole read.
"""

from __future__ import annotations

import contextlib
from typing import Any

from service.media.refusals import PageTooLarge

#: Bytes asked for at a time while reading a body whole (the requests handler's own step).
_CHUNK = 1 << 20


class Capped:
    """A response whose whole reads are bounded by ``most`` bytes in all; every other
    attribute is the response's own.

    A wrapper rather than a patched ``read``: ``urlopen(...).read()`` leaves the wrapper
    the only holder of the response, and a ``read`` stored on the response itself would
    make a cycle that keeps an abandoned response, and its socket, alive until the
    garbage collector's next pass.
    """

    def __init__(self, response: Any, most: int) -> None:
        self._response = response
        self._most = most
        self.taken = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._response, name)

    def __enter__(self) -> Capped:
        return self

    def __exit__(self, *exc: object) -> None:
        self._response.close()

    def read(self, amt: int | None = None) -> bytes:
        if amt is not None and amt >= 0:
            data: bytes = self._response.read(amt)
            self.taken += len(data)
            return data
        return self._rest()

    def _rest(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            room = self._most - self.taken
            chunk: bytes = self._response.read(max(1, min(_CHUNK, room + 1)))
            if not chunk:
                return b"".join(chunks)
            self.taken += len(chunk)
            if self.taken > self._most:
                with contextlib.suppress(Exception):
                    self._response.close()  # the site may keep sending: hang up on it
                raise PageTooLarge(
                    f"a page or manifest was larger than HAUL_MAX_PAGE_BYTES ({self._most} "
                    "bytes); haul stopped reading it"
                )
            chunks.append(chunk)
