"""structlog setup: JSON lines off a terminal, readable lines on one.

Every line names the process's ``role`` (api, worker, scheduler, cli), read from the
command that started it, so the lines of several processes can share one screen.
Readable lines are what :func:`readable` makes of an event; ``haul logs`` makes the
same of JSON lines, so ``just run`` shows one format however its processes print.

Per-unit-of-work context (job_id, client_id, queue, attempt) is bound with
``structlog.contextvars`` by the API middleware and the worker middleware, so
every line a job's work logs carries it. Standard-library loggers (Dramatiq,
uvicorn, yt-dlp through our adapter) go through the same renderer.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from service.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Idempotent; call once per process before the first log line."""
    as_json = settings.log_json if settings.log_json is not None else not sys.stderr.isatty()
    role = process_role()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        lambda _logger, _name, event: {**event, "role": event.get("role", role)},
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else lambda _logger, _name, event: readable(event)
    )
    structlog.configure(
        # Below the level, an event is dropped before any processor runs (yt-dlp's chatter
        # is logged at debug: a dozen lines per job that would each be stamped, then dropped).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("pika", "alembic.runtime.migration", "alembic.runtime.plugins", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


#: The command that starts each kind of process, and the role its lines name.
_ROLES = {"uvicorn": "api", "dramatiq": "worker", "periodiq": "scheduler", "haul": "cli"}


def process_role(argv0: str | None = None) -> str:
    """What this process is (api, worker, scheduler, cli), from the command that started it.

    Dramatiq's worker processes are forks of ``dramatiq``, so they say ``worker`` too;
    ``python -m dramatiq`` runs ``dramatiq/__main__.py``, hence the parent's name.
    """
    path = Path(sys.argv[0] if argv0 is None else argv0)
    for name in (path.name, path.parent.name):
        if name in _ROLES:
            return _ROLES[name]
    return path.stem or "python"


#: Keys a readable line shows in its columns, not as ``key=value``.
_COLUMNS = frozenset({"timestamp", "level", "role", "job_id", "event", "logger", "exception"})


def readable(event: dict[str, Any]) -> str:
    """One event as a line a person reads: local time, level, role, job id, message, the rest.

    ``20:14:03.512 INFO    worker    job=3f2a…  attempt finished outcome=succeeded``;
    an exception follows on indented lines.
    """
    line = " ".join(
        part
        for part in (
            _clock(event.get("timestamp")),
            f"{str(event.get('level', '-')).upper():<7}",
            f"{event.get('role', '-'):<9}",
            f"job={event['job_id']}" if event.get("job_id") else "",
            str(event.get("event", "")),
            " ".join(f"{k}={_value(v)}" for k, v in event.items() if k not in _COLUMNS),
        )
        if part
    )
    exception = event.get("exception")
    if exception:
        line += "".join(f"\n    {row}" for row in str(exception).rstrip().splitlines())
    return line


def _clock(timestamp: object) -> str:
    """``HH:MM:SS.mmm`` in local time, from an ISO timestamp (now when there is none)."""
    try:
        moment = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).astimezone()
    except ValueError:
        moment = datetime.now().astimezone()
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if not text or any(c.isspace() or c == '"' for c in text) else text
