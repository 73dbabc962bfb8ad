"""A small Server-Sent Events reader over an httpx stream, for tests."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import httpx


@dataclass
class Event:
    """One message: its type (``None`` for a comment), id, decoded data, and arrival time."""

    kind: str | None
    id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    received: float = field(default_factory=time.time)


def events(response: httpx.Response) -> Iterator[Event]:
    """Messages as they arrive; comments come through as ``Event(None, None)``."""
    return parse(response.iter_lines())


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """Messages of an event stream's lines (as ``curl -N`` prints them, say)."""
    kind: str | None = None
    event_id: int | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or kind:
                yield Event(kind or "message", event_id, json.loads("\n".join(data) or "{}"))
            kind, event_id, data = None, None, []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            yield Event(None, None)
        elif name == "event":
            kind = value
        elif name == "id":
            event_id = int(value)
        elif name == "data":
            data.append(value)
