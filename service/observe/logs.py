"""``haul logs``: log lines on stdin, shown as a person reads them (or as JSON, for a collector).

``just run`` starts each process with its output piped into ``haul logs --role ROLE``:
through a pipe haul prints JSON, and Dramatiq's main process and uvicorn print lines
of their own formats; this makes one format of them all, with each line's time,
level, role and job id. It also reads what a collector kept
(``journalctl -o cat -u haul-worker | haul logs``).

Lines that are not haul's JSON get the role given, their own level and time when they
say them (Dramatiq: ``[time] [PID n] [thread] [logger] [LEVEL] message``; uvicorn:
``LEVEL:     message``), else the time they arrived; a traceback's lines are errors.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from service.logging import readable

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TextIO

_DRAMATIQ = re.compile(
    r"\[(?P<time>[^\]]+)\] \[PID \d+\] \[[^\]]*\] \[(?P<logger>[^\]]+)\] "
    r"\[(?P<level>[A-Z]+)\] (?P<event>.*)"
)
_UVICORN = re.compile(r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):\s+(?P<event>.*)")
_TRACEBACK = re.compile(r"\s+\S.*|\w+(Error|Exception)\b.*")


def parse(line: str, role: str, *, in_traceback: bool = False) -> dict[str, Any]:
    """One line of a process's output as a log event (a dict like haul's JSON lines)."""
    text = line.rstrip("\r\n")
    if text.startswith("{"):
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if isinstance(event, dict) and "event" in event:
            event.setdefault("role", role)
            return event
    now = datetime.now(UTC).isoformat()
    if match := _DRAMATIQ.fullmatch(text):
        return {
            "timestamp": _local_to_iso(match["time"]) or now,
            "level": match["level"].lower(),
            "role": role,
            "event": match["event"],
        }
    if match := _UVICORN.fullmatch(text):
        return {
            "timestamp": now,
            "level": match["level"].lower(),
            "role": role,
            "event": match["event"],
        }
    starts = text.startswith("Traceback (most recent call last):")
    level = "error" if starts or (in_traceback and _TRACEBACK.fullmatch(text)) else "info"
    return {"timestamp": now, "level": level, "role": role, "event": text}


def relay(lines: Iterable[str], out: TextIO, role: str, *, as_json: bool = False) -> None:
    """Write each line as :func:`service.logging.readable` shows it (or as JSON), as it comes."""
    in_traceback = False
    for line in lines:
        if not line.strip():
            continue
        event = parse(line, role, in_traceback=in_traceback)
        if not str(event.get("event", "")).strip() and not event.get("exception"):
            continue  # a spacer line of a table logged line by line (periodiq's actors)
        # A bare line that is an error (not a logger's) starts or continues a traceback.
        in_traceback = event.get("level") == "error" and event.get("event") == line.rstrip("\r\n")
        out.write((json.dumps(event, default=str) if as_json else readable(event)) + "\n")
        out.flush()


def _local_to_iso(text: str) -> str | None:
    """Python logging's default ``asctime`` (local time, ``2026-11-30 20:14:03,512``) as ISO."""
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").astimezone().isoformat()
    except ValueError:
        return None
