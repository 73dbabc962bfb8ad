"""``haul doctor``: what to check before asking why haul does not work on this machine.

One line per check: ``ok``; ``warn`` (it works, but look); ``FAIL`` (haul will not work
as configured), each with its fix. A check never changes anything but the storage and
temp directories, which it creates as the workers would. The worker runs the ffmpeg
check when it starts (``actors.middleware.RequireMediaTools``): without ffmpeg every
download would fail, so it refuses to start instead.
"""

from __future__ import annotations

import importlib.metadata
import ipaddress
import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from service.domain.ytdlp import release_date

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from service.domain.egress import Allowance
    from service.settings import Settings

Status = Literal["ok", "warn", "FAIL"]

MEDIA_TOOLS = ("ffmpeg", "ffprobe")
#: yt-dlp older than this is flagged: sites change, and old extractors stop working.
YT_DLP_STALE_DAYS = 90
#: Less free space than this under the storage dir fails the disk check.
MIN_FREE_BYTES = 1024**3
_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Finding:
    """The outcome of one check, as one line: status, check, what was found, the fix."""

    check: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.check:<14} {self.detail}"
        return f"{text}; fix: {self.fix}" if self.fix and self.status != "ok" else text


def check_database(settings: Settings) -> Finding:
    from service.db.migrate import revisions
    from service.errors import ServiceUnavailable

    where = _where(settings.database_url, 5432)
    try:
        current, newest = revisions(settings.database_url, settings.migrations_dir)
    except ServiceUnavailable as exc:
        if "does not exist" in exc.message:
            return Finding("database", "FAIL", f"{where}: {exc.message}", "haul migrate")
        fix = "start PostgreSQL, or point HAUL_DATABASE_URL at it"
        return Finding("database", "FAIL", f"{where} does not answer: {exc.message}", fix)
    if current != newest:
        found = "has no schema" if current is None else f"is at revision {current}"
        return Finding(
            "database", "FAIL", f"{where} {found}; the newest is {newest}", "haul migrate"
        )
    return Finding("database", "ok", f"{where}, schema at the newest revision ({current})")


def check_broker(settings: Settings) -> Finding:
    import pika

    where = _where(settings.broker_url, 5672)
    params = pika.URLParameters(settings.broker_url)
    params.socket_timeout = params.blocked_connection_timeout = _TIMEOUT_S
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.ProbableAuthenticationError:
        fix = "give the right user and password in HAUL_BROKER_URL"
        return Finding("broker", "FAIL", f"{where} refused the login", fix)
    except pika.exceptions.AMQPError as exc:
        fix = "start RabbitMQ, or point HAUL_BROKER_URL at it"
        return Finding("broker", "FAIL", f"{where} does not answer: {type(exc).__name__}", fix)
    return Finding("broker", "ok", f"RabbitMQ answers at {where}")


def check_management(settings: Settings) -> Finding:
    """Optional: the RabbitMQ management API, where operators look at queues."""
    import httpx

    url = urlsplit(settings.broker_url)
    api = f"http://{url.hostname or '127.0.0.1'}:15672/api/overview"
    auth = (unquote(url.username or "guest"), unquote(url.password or "guest"))
    try:
        response = httpx.get(api, auth=auth, timeout=_TIMEOUT_S)
    except httpx.HTTPError:
        fix = "rabbitmq-plugins enable rabbitmq_management"
        return Finding("management", "warn", f"nothing answers at {api} (optional)", fix)
    if response.status_code != 200:
        fix = "rabbitmqctl set_user_tags USER management (the HAUL_BROKER_URL user)"
        detail = f"{api} answers {response.status_code} to the broker's user (optional)"
        return Finding("management", "warn", detail, fix)
    version = response.json().get("rabbitmq_version", "?")
    return Finding("management", "ok", f"RabbitMQ {version} management API at {api}")


def check_ffmpeg(_settings: Settings | None = None) -> Finding:
    missing = [tool for tool in MEDIA_TOOLS if shutil.which(tool) is None]
    if missing:
        detail = f"{' and '.join(missing)} not on PATH: every download needs them"
        return Finding("ffmpeg", "FAIL", detail, f"install them: {install_ffmpeg_command()}")
    versions = []
    for tool in MEDIA_TOOLS:
        try:
            out = subprocess.run(
                [tool, "-version"], capture_output=True, text=True, timeout=10, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            fix = f"reinstall it: {install_ffmpeg_command()}"
            return Finding("ffmpeg", "FAIL", f"`{tool} -version` failed: {exc}", fix)
        words = out.split()
        versions.append(f"{tool} {words[2] if len(words) > 2 else '?'}")
    return Finding("ffmpeg", "ok", ", ".join(versions))


def install_ffmpeg_command() -> str:
    """How a person gets ffmpeg and ffprobe (Debian's ``ffmpeg`` package brings both)."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install ffmpeg (macOS: brew install ffmpeg)"


def media_tools_refusal() -> str | None:
    """The one line a worker refuses to start with, or None when ffmpeg and ffprobe are there."""
    finding = check_ffmpeg()
    return None if finding.status == "ok" else f"{finding.detail}; {finding.fix}"


def check_storage(settings: Settings) -> Finding:
    dirs = {"HAUL_STORAGE_DIR": settings.storage_dir, "HAUL_TEMP_DIR": settings.temp_dir}
    for name, path in dirs.items():
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".haul-doctor-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            fix = f"make it writable for this user, or set {name}"
            return Finding("storage", "FAIL", f"{name}={path} is not writable: {exc}", fix)
    if settings.storage_dir.stat().st_dev != settings.temp_dir.stat().st_dev:
        detail = (
            f"{settings.temp_dir} and {settings.storage_dir} are on different filesystems, "
            "so finished files cannot be moved into storage atomically"
        )
        fix = "put HAUL_TEMP_DIR beside HAUL_STORAGE_DIR, on the same filesystem"
        return Finding("storage", "FAIL", detail, fix)
    detail = f"{settings.storage_dir} and {settings.temp_dir}: writable, one filesystem"
    return Finding("storage", "ok", detail)


def check_disk(settings: Settings) -> Finding:
    usage = shutil.disk_usage(_existing(settings.storage_dir))
    detail = f"{_size(usage.free)} free of {_size(usage.total)} under {settings.storage_dir}"
    fix = (
        "free some space, or move HAUL_STORAGE_DIR and HAUL_TEMP_DIR to a larger disk "
        "(HAUL_RETENTION_DAYS deletes old files)"
    )
    if usage.free < MIN_FREE_BYTES:
        return Finding("disk", "FAIL", detail, fix)
    if usage.free < settings.max_file_bytes:
        limit = f"one file may take up to {_size(settings.max_file_bytes)} (HAUL_MAX_FILE_BYTES)"
        return Finding("disk", "warn", f"{detail}; {limit}", fix)
    return Finding("disk", "ok", detail)


def check_ytdlp(_settings: Settings | None = None, today: date | None = None) -> Finding:
    try:
        version = importlib.metadata.version("yt-dlp")
    except importlib.metadata.PackageNotFoundError:
        return Finding("yt-dlp", "FAIL", "yt-dlp is not installed", "pip install -e . in .venv")
    released = release_date(version)
    if released is None:
        return Finding("yt-dlp", "ok", f"{version} (release date unknown)")
    age = ((today or date.today()) - released).days
    if age > YT_DLP_STALE_DAYS:
        detail = f"{version} is {age} days old; sites change, and old extractors stop working"
        return Finding("yt-dlp", "warn", detail, "haul ytdlp update (docs/operations.md)")
    return Finding("yt-dlp", "ok", f"{version} ({age} days old)")


def check_js_runtime(_settings: Settings | None = None) -> Finding:
    """What yt-dlp solves YouTube's challenges with: Deno, the EJS scripts (and AES for HLS)."""
    from service.media import toolchain

    tools = toolchain.report()  # yt-dlp's own checks; runs `deno --version` once
    if tools.problems:
        fix = "pip install -e . in this environment (it brings yt-dlp[default] and deno)"
        return Finding("js-runtime", "warn", "; ".join(tools.problems), fix)
    detail = f"Deno {tools.deno_version} ({tools.deno_path}), yt-dlp-ejs {tools.ejs}, AES"
    return Finding("js-runtime", "ok", detail)


def check_secret_key(settings: Settings) -> Finding:
    if settings.secret_key is None:
        detail = (
            "HAUL_SECRET_KEY is unset: the API refuses cookies (409) and workers run every job "
            "as a guest; dashboard sessions are signed with a secret kept in PostgreSQL"
        )
        fix = (
            "set HAUL_SECRET_KEY to the same 32+ random characters on every API and worker "
            "process, e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
        return Finding("secret-key", "warn", detail, fix)
    old = len(settings.cookie_secrets) - 1
    rotation = f"; {old} old key(s) still open cookies (HAUL_OLD_SECRET_KEYS)" if old else ""
    return Finding("secret-key", "ok", f"HAUL_SECRET_KEY is set{rotation}")


def check_egress(settings: Settings) -> Finding:
    policy = settings.egress_policy
    if not policy.allow:
        return Finding("egress", "ok", "jobs may reach public addresses only")
    detail = "public addresses, plus " + ", ".join(_allowance(a) for a in policy.allow)
    sensitive = [ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "169.254.169.254")]
    broad = [
        a for a in policy.allow if a.ports is None and any(a.covers(ip, 1) for ip in sensitive)
    ]
    if broad:
        detail += ": jobs may reach every port of this machine or a cloud metadata address"
        fix = "allow only the port you need in HAUL_EGRESS_ALLOW, e.g. 127.0.0.1/32:8001"
        return Finding("egress", "warn", detail, fix)
    return Finding("egress", "ok", detail)


def check_worker_metrics(settings: Settings) -> Finding:
    import httpx

    port = settings.worker_metrics_port
    if not port:
        return Finding("worker-metrics", "ok", "off (HAUL_WORKER_METRICS_PORT unset or 0)")
    host = settings.worker_metrics_host
    where = f"{host}:{port}"
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return Finding("worker-metrics", "ok", f"{where} is free for a worker's metrics")
        except OSError:
            pass
    asked = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 (compared, not bound)
    try:
        text = httpx.get(f"http://{asked}:{port}/metrics", timeout=_TIMEOUT_S).text
    except httpx.HTTPError:
        text = ""
    if "haul_worker_threads" in text:
        return Finding("worker-metrics", "ok", f"{where} is served by a running haul worker")
    fix = "set HAUL_WORKER_METRICS_PORT to a free port (0: off)"
    return Finding("worker-metrics", "FAIL", f"{where} is taken by another program", fix)


CHECKS: dict[str, Callable[[Settings], Finding]] = {
    "database": check_database,
    "broker": check_broker,
    "management": check_management,
    "ffmpeg": check_ffmpeg,
    "storage": check_storage,
    "disk": check_disk,
    "yt-dlp": check_ytdlp,
    "js-runtime": check_js_runtime,
    "secret-key": check_secret_key,
    "egress": check_egress,
    "worker-metrics": check_worker_metrics,
}


def run(settings: Settings, names: list[str] | None = None) -> list[Finding]:
    """Run the named checks (all by default), in the order of :data:`CHECKS`."""
    wanted = names or list(CHECKS)
    return [check(settings) for name, check in CHECKS.items() if name in wanted]


def _where(url: str, default_port: int) -> str:
    """``host:port/name`` of a connection URL, without its user or password."""
    parts = urlsplit(url)
    path = unquote(parts.path).strip("/")  # a vhost of "/" (``%2F``) is the default one
    return f"{parts.hostname or 'localhost'}:{parts.port or default_port}" + (
        f"/{path}" if path else ""
    )


def _allowance(allowance: Allowance) -> str:
    network = str(allowance.network)
    ports = allowance.ports
    if ports is None:
        return network
    if allowance.network.version == 6:
        network = f"[{network}]"
    return f"{network}:{ports.start}" + (f"-{ports.stop - 1}" if len(ports) > 1 else "")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
