"""What ``just run`` shows: every process's lines as time, level, role, job id, message."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime

import pytest

from service.logging import process_role, readable
from service.observe.logs import parse, relay

LINE = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}) (\w+) +(\w+) +(.*)")


def local_clock(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S.%f")[:12]


def test_a_job_line_shows_time_level_role_job_and_message_then_the_rest() -> None:
    event = {
        "event": "attempt finished",
        "job_id": "3f2a9c1e-0000-4000-8000-000000000001",
        "outcome": "succeeded",
        "error": "HTTP Error 503: Service Unavailable",
        "role": "worker",
        "level": "info",
        "logger": "service.work.outcomes",
        "timestamp": "2026-11-30T20:14:03.512345Z",
    }

    line = readable(event)

    assert line == (
        f"{local_clock('2026-11-30T20:14:03.512345+00:00')} INFO    worker    "
        "job=3f2a9c1e-0000-4000-8000-000000000001 attempt finished "
        'outcome=succeeded error="HTTP Error 503: Service Unavailable"'
    )


def test_an_exception_follows_on_indented_lines() -> None:
    event = {"event": "boom", "level": "error", "role": "api", "exception": "Traceback\n  x\nE"}

    first, *rest = readable(event).splitlines()

    assert LINE.fullmatch(first)
    assert rest == ["    Traceback", "      x", "    E"]


def test_haul_json_lines_keep_their_own_role_and_time() -> None:
    text = json.dumps(
        {"event": "sweep", "level": "info", "role": "worker", "timestamp": "2026-11-30T20:00:00Z"}
    )

    event = parse(text + "\n", "scheduler")

    assert event["role"] == "worker"
    assert readable(event).startswith(local_clock("2026-11-30T20:00:00+00:00") + " INFO    worker")


@pytest.mark.parametrize(
    ("line", "level", "message"),
    [
        (
            "[2026-11-30 20:14:03,512] [PID 7] [MainThread] [dramatiq.MainProcess] [INFO] "
            "Dramatiq '2.2.1' is booting up.",
            "info",
            "Dramatiq '2.2.1' is booting up.",
        ),
        (
            'INFO:     127.0.0.1:5000 - "GET /health/ready HTTP/1.1" 200 OK',
            "info",
            '127.0.0.1:5000 - "GET /health/ready HTTP/1.1" 200 OK',
        ),
        ("ERROR:    Error loading ASGI app.", "error", "Error loading ASGI app."),
        ("database is at the newest schema", "info", "database is at the newest schema"),
        ("Traceback (most recent call last):", "error", "Traceback (most recent call last):"),
    ],
)
def test_other_formats_get_the_role_given_and_their_own_level(
    line: str, level: str, message: str
) -> None:
    event = parse(line, "worker")

    assert (event["level"], event["role"], event["event"]) == (level, "worker", message)


def test_the_dramatiq_main_process_keeps_its_own_time() -> None:
    line = "[2026-11-30 20:14:03,512] [PID 7] [MainThread] [dramatiq.MainProcess] [WARNING] x"

    shown = readable(parse(line, "worker"))

    assert shown == "20:14:03.512 WARNING worker    x"


def test_a_bare_traceback_is_shown_as_errors_to_its_last_line() -> None:
    out = io.StringIO()
    lines = [
        "Traceback (most recent call last):\n",
        '  File "x.py", line 1, in <module>\n',
        "ValueError: bad\n",
        "back to normal\n",
    ]

    relay(lines, out, "api")

    levels = [LINE.fullmatch(line)[2] for line in out.getvalue().splitlines()]  # type: ignore[index]
    assert levels == ["ERROR", "ERROR", "ERROR", "INFO"]


def test_blank_messages_are_left_out() -> None:
    out = io.StringIO()
    blank = json.dumps({"event": "", "level": "info", "role": "scheduler"})

    relay([blank + "\n", "   \n", "INFO:     kept\n"], out, "scheduler")

    assert [LINE.fullmatch(line)[4] for line in out.getvalue().splitlines()] == ["kept"]  # type: ignore[index]


def test_as_json_every_line_becomes_one_json_object_with_a_role() -> None:
    out = io.StringIO()

    relay(["INFO:     Started server process [1]\n", "\n"], out, "api", as_json=True)

    (event,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (event["role"], event["level"], event["event"]) == (
        "api",
        "info",
        "Started server process [1]",
    )
    assert event["timestamp"]


@pytest.mark.parametrize(
    ("argv0", "role"),
    [
        ("/srv/haul/.venv/bin/uvicorn", "api"),
        ("/srv/haul/.venv/bin/dramatiq", "worker"),
        ("/usr/lib/python3/site-packages/dramatiq/__main__.py", "worker"),
        (".venv/bin/periodiq", "scheduler"),
        ("haul", "cli"),
        ("/usr/bin/pytest", "pytest"),
    ],
)
def test_the_role_comes_from_the_command_that_started_the_process(argv0: str, role: str) -> None:
    assert process_role(argv0) == role
