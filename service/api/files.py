"""Serve a stored file with single-range ``Range`` support (for seeking and resuming)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from litestar.response import Stream

from service.errors import HaulError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: A position with more digits than this is past any file (10**18 bytes is an exabyte);
#: Python refuses to parse numbers of thousands of digits, so they are never parsed.
_MAX_DIGITS = 18
_BEYOND = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    """A byte position from the header; any longer number counts as "past the end"."""
    digits = digits.lstrip("0") or "0"
    return _BEYOND if len(digits) > _MAX_DIGITS else int(digits)


class RangeNotSatisfiable(HaulError):
    """The requested range is outside the file."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the requested range is outside the file ({size} bytes)")
        self.size = size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) of a single byte range, or None to send the whole file.

    Multiple ranges and malformed headers are ignored (RFC 9110 allows that);
    a well-formed range outside the file raises :class:`RangeNotSatisfiable`.
    """
    if not header or size == 0:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = _position(last)
        if length == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - length), size - 1
    start = _position(first)
    end = _position(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)


def _read(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        remaining = length
        while remaining > 0:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def file_response(path: Path, *, filename: str, mime: str, range_header: str | None) -> Stream:
    """The whole file (200) or one range of it (206); raises :class:`RangeNotSatisfiable`."""
    size = path.stat().st_size
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
        ),
    }
    span = parse_range(range_header, size)
    if span is None:
        return Stream(
            content=_read(path, 0, size),
            media_type=mime,
            headers={**headers, "Content-Length": str(size)},
        )
    start, end = span
    return Stream(
        content=_read(path, start, end - start + 1),
        status_code=206,
        media_type=mime,
        headers={
            **headers,
            "Content-Range": f"bytes {start}-{end}/{size}",
            "Content-Length": str(end - start + 1),
        },
    )
