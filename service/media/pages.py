"""Bounded reads of pages and manifests: no response read whole passes ``HAUL_MAX_PAGE_BYTES``.

yt-dlp's extractors read a page, an API answer or a manifest with ``Response.read()``:
the whole body, into memory (``_webpage_read_content``). So does the HLS downloader
with a media playlist and with the keys it decrypts by. A site answering with an
endless body grows the worker without bound: an endless ``text/html`` page was read
to ~3 GB in 80 s, until the job died of ``OverflowError``. ``HaulYDL.urlopen`` passes
every response (and the one an ``HTTPError`` carries) through :func:`cap`: reading the
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
from typing import TYPE_CHECKING, Any
from weakref import WeakMethod

from service.media.refusals import PageTooLarge

if TYPE_CHECKING:
    from collections.abc import Callable

#: Bytes asked for at a time while reading a body whole (the requests handler's own step).
_CHUNK = 1 << 20


class _CappedRead:
    """A response's ``read``, with whole reads bounded by ``most`` bytes in all.

    It holds the response's own ``read`` and ``close`` weakly: the response holds it,
    and a cycle would keep an abandoned response (and its socket) alive until the
    garbage collector's next pass instead of freeing it at once.
    """

    def __init__(self, response: Any, most: int) -> None:
        self._read = WeakMethod(response.read)
        self._close = WeakMethod(response.close)
        self._most = most
        self.taken = 0

    def _call(self, method: WeakMethod[Callable[..., Any]], *args: Any) -> Any:
        bound = method()
        if bound is None:  # cannot happen while a caller reads: it holds the response
            raise ReferenceError("the response is gone")
        return bound(*args)

    def __call__(self, amt: int | None = None) -> bytes:
        if amt is not None and amt >= 0:
            data: bytes = self._call(self._read, amt)
            self.taken += len(data)
            return data
        return self._rest()

    def _rest(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            room = self._most - self.taken
            chunk: bytes = self._call(self._read, max(1, min(_CHUNK, room + 1)))
            if not chunk:
                return b"".join(chunks)
            self.taken += len(chunk)
            if self.taken > self._most:
                with contextlib.suppress(Exception):
                    self._call(self._close)  # the site may keep sending: hang up on it
                raise PageTooLarge(
                    f"a page or manifest was larger than HAUL_MAX_PAGE_BYTES ({self._most} "
                    "bytes); haul stopped reading it"
                )
            chunks.append(chunk)


def cap(response: Any, most: int) -> Any:
    """``response``, its whole reads bounded by ``most`` bytes (the object itself, so
    yt-dlp's ``isinstance`` checks and every other attribute stay as they were)."""
    response.read = _CappedRead(response, most)
    return response
