"""Stop, start and tune this machine's RabbitMQ and PostgreSQL, for the outage tests.

These act on the real servers the suite runs against (see ``shared services``:
every test machine has its own), so every stop is paired with a start in a
``finally``. Locally, a machine where the control commands are missing skips
the tests that need them; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator


def _run(*cmd: str, timeout: float = 120) -> str:
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    return done.stdout.strip()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def missing_controls() -> str | None:
    """Why the servers cannot be controlled here, or None when they can."""
    for command in ("rabbitmqctl", "pg_ctlcluster", "pg_lsclusters"):
        if shutil.which(command) is None:
            return f"{command} is not installed: the outage tests restart local servers"
    try:
        _run("rabbitmqctl", "-q", "status", timeout=30)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return f"rabbitmqctl cannot reach the local node: {exc}"
    if _postgres_cluster() is None:
        return "no local PostgreSQL cluster listens on port 5432"
    return None


# --- RabbitMQ -------------------------------------------------------------------------------------


def stop_rabbitmq() -> None:
    """Stop the RabbitMQ application (the node stays up): every connection drops, port closes."""
    _run("rabbitmqctl", "-q", "stop_app")


def start_rabbitmq() -> None:
    """Start the RabbitMQ application again and wait until it accepts connections."""
    _run("rabbitmqctl", "-q", "start_app")
    wait_for(lambda: _port_open(5672), timeout=60, what="RabbitMQ to listen again")


def _rabbit_env(name: str) -> str:
    return _run("rabbitmqctl", "eval", f"application:get_env(rabbit, {name}).")


@contextmanager
def rabbitmq_settings(**values: int) -> Iterator[None]:
    """Set RabbitMQ application settings at run time; put the old values back after.

    Channel settings (``consumer_timeout``, ``channel_tick_interval``) apply to
    channels opened afterwards, so restart the consumers inside the block.
    """
    before = {name: _rabbit_env(name) for name in values}
    try:
        for name, value in values.items():
            _run("rabbitmqctl", "eval", f"application:set_env(rabbit, {name}, {int(value)}).")
        yield
    finally:
        for name, old in before.items():
            if old.startswith("{ok,"):
                value = old.removeprefix("{ok,").removesuffix("}")
                _run("rabbitmqctl", "eval", f"application:set_env(rabbit, {name}, {value}).")
            else:
                _run("rabbitmqctl", "eval", f"application:unset_env(rabbit, {name}).")


# --- PostgreSQL -----------------------------------------------------------------------------------


def _postgres_cluster() -> tuple[str, str] | None:
    """(version, name) of the local cluster on port 5432, from ``pg_lsclusters``."""
    for line in _run("pg_lsclusters", "--no-header").splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return version, name
    return None


def _pg_ctlcluster(action: str, *flags: str) -> None:
    cluster = _postgres_cluster()
    assert cluster is not None, "no PostgreSQL cluster on port 5432"
    _run("pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action, *flags)


def stop_postgres() -> None:
    """Stop PostgreSQL at once (``-m fast``: open sessions are cut off)."""
    _pg_ctlcluster("stop", "-m", "fast")


def _postgres_ready() -> bool:
    probe = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
    return subprocess.run(probe, check=False).returncode == 0


def start_postgres() -> None:
    """Start PostgreSQL again (unless it runs) and wait until it accepts connections."""
    if not _postgres_ready():
        _pg_ctlcluster("start")
    wait_for(_postgres_ready, timeout=60, what="PostgreSQL to accept connections again")
