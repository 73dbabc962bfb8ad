"""Configuration from ``HAUL_*`` environment variables (and an optional ``.env``).

This is the only module that reads the environment. Every default works on a
developer machine with PostgreSQL and RabbitMQ on localhost. A duration's name says
its unit (``_s``, ``_ms``); a setting renamed to say so still reads its old variable.
"""

from __future__ import annotations

import os
import socket
import tempfile
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.domain.breaker import Policy as BreakerPolicy
from service.domain.egress import EgressPolicy
from service.domain.quotas import ClientLimits


def _default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _renamed(name: str, *, was: str) -> AliasChoices:
    """The variable of a renamed setting, then its old one (read too; the new one wins)."""
    return AliasChoices(f"HAUL_{name.upper()}", f"HAUL_{was.upper()}")


class Settings(BaseSettings):
    """Every knob of haul; one environment variable per field, ``HAUL_`` + name."""

    model_config = SettingsConfigDict(
        env_prefix="HAUL_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # Connections
    database_url: str = Field(
        "postgresql+psycopg://postgres@127.0.0.1:5432/haul",
        description="SQLAlchemy URL of the PostgreSQL database (psycopg 3 driver).",
    )
    broker_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/%2F", description="RabbitMQ AMQP URL."
    )
    queue_prefix: str = Field(
        "haul", description="Prefix of every queue name, e.g. haul.download; one per deployment."
    )

    # Files
    storage_dir: Path = Field(Path("data/files"), description="Where finished files are kept.")
    temp_dir: Path = Field(
        Path("data/tmp"), description="Scratch space for downloads in progress (same filesystem)."
    )

    migrations_dir: Path = Field(
        Path(__file__).resolve().parents[1] / "infra" / "migrations",
        description="The Alembic scripts; the default is the source checkout's infra/migrations.",
    )

    # API
    max_body_bytes: int = Field(64 * 1024, description="Largest request body the API accepts.")
    page_size_max: int = Field(100, description="Largest page the list endpoints return.")
    sse_heartbeat_s: float = Field(
        15.0,
        gt=0,
        description="Seconds between keep-alive comments on an idle event stream; also how "
        "often an open stream checks that its key is still valid (a revoked key's streams "
        "end within one).",
    )
    sse_max_streams_per_client: int = Field(
        8,
        ge=1,
        description="Event streams one client may hold open at once on one API process; "
        "the next is a 429 problem with Retry-After.",
    )

    # Work
    max_retries: int = Field(3, ge=0, description="Retries of a transient failure, per step.")
    min_backoff_ms: int = Field(2_000, ge=100, description="First retry delay (doubles each time).")
    max_backoff_ms: int = Field(300_000, ge=100, description="Longest retry delay.")
    rate_limited_backoff_ms: int = Field(
        60_000, ge=100, description="Retry delay after a site throttled us (HTTP 429 and the like)."
    )
    probe_time_limit_s: int = Field(120, ge=1, description="Time limit of one probe attempt.")
    download_time_limit_s: int = Field(3_600, ge=1, description="Time limit of one download.")
    lease_s: int = Field(
        60,
        ge=5,
        validation_alias=_renamed("lease_s", was="lease_seconds"),
        description="How long a claim lasts without a heartbeat.",
    )
    heartbeat_s: float = Field(
        1.0,
        gt=0,
        validation_alias=_renamed("heartbeat_s", was="heartbeat_seconds"),
        description="How often a running download writes progress and renews its lease.",
    )
    playlist_progress_s: float = Field(
        5.0,
        gt=0,
        validation_alias=_renamed("playlist_progress_s", was="playlist_progress_seconds"),
        description="Most often running entries' heartbeats write their playlist's progress.",
    )
    playlist_max_entries: int = Field(
        200, ge=1, description="Most child jobs one playlist or feed expands into."
    )
    probed_info_max_age_s: int = Field(
        300,
        ge=0,
        description="Longest a probe's info is reused by the download instead of extracting "
        "the URL again (many sites sign their format URLs for minutes); 0: never reused.",
    )
    subscription_min_interval_s: int = Field(
        300, ge=1, description="Shortest interval between a subscription's checks."
    )
    subscription_max_new: int = Field(
        50, ge=1, description="Most jobs one check of a subscription makes; the rest wait."
    )
    subscription_max_failures: int = Field(
        5, ge=1, description="Consecutive failed checks after which a subscription pauses."
    )
    subscription_list_entries: int = Field(
        500, ge=1, description="Most entries one check lists (from the top of the listing)."
    )
    database_wait_s: float = Field(
        30.0,
        ge=0,
        description="How long a worker waits out an unreachable database before it gives the "
        "message back for a retry (a restart of PostgreSQL should not spend retries).",
    )
    republish_after_s: int = Field(
        300, ge=10, description="A queued job not claimed for this long is published again."
    )
    retention_days: float | None = Field(
        None,
        gt=0,
        description="Delete ended jobs and their files this many days after; unset keeps all.",
    )
    orphan_grace_s: int = Field(
        600,
        ge=0,
        description="A file in storage that no artifact names, or an attempt's work dir whose "
        "job is not running, is deleted once it is older than HAUL_LEASE_S plus this.",
    )
    # Control and fairness (see docs/operations.md, "Pausing, limits and priorities")
    site_max_running: int | None = Field(
        None,
        ge=1,
        description="Default fleet-wide limit of running jobs per site (media host); a limit "
        "set for a site through the API overrides it. Unset: no default limit.",
    )
    # When a site fights back (see docs/operations.md, "Pacing and the breaker")
    site_min_interval_s: float = Field(
        0.0,
        ge=0,
        le=86_400,
        description="Default minimum interval between attempt starts on one site family, "
        "fleet-wide, for sites without a built-in default (YouTube 5 s, other big video "
        "sites 2 s) or their own setting. 0: not paced.",
    )
    site_pacing_jitter: float = Field(
        0.5,
        ge=0,
        le=10,
        description="Each paced interval is lengthened by up to this fraction of it, at "
        "random, for sites without their own jitter.",
    )
    breaker_threshold: int = Field(
        3,
        ge=1,
        description="Throttled attempts in a row (429, a bot check, 'try again later') on one "
        "site family and identity that open its breaker.",
    )
    breaker_window_s: float = Field(
        600.0,
        gt=0,
        description="A throttle later than this after the first of a run starts a new count.",
    )
    breaker_cooldown_s: float = Field(
        120.0,
        gt=0,
        description="How long an open breaker holds the site's jobs the first time; each "
        "reopening without a success in between doubles it.",
    )
    breaker_max_cooldown_s: float = Field(
        21_600.0, gt=0, description="The longest an open breaker holds a site's jobs."
    )
    tier_priorities: dict[str, int] = Field(
        default_factory=lambda: {"standard": 5, "premium": 9},
        description="Highest job priority (0-9) per client tier, as JSON, e.g. "
        '{"standard": 5, "premium": 9}; a tier not listed gets the lowest bound.',
    )
    # Webhooks (see the README's "Webhooks" and docs/operations.md)
    webhook_max_attempts: int = Field(
        12, ge=1, description="HTTP attempts of one webhook delivery before it is failed."
    )
    webhook_min_backoff_ms: int = Field(
        5_000, ge=100, description="First delay between delivery attempts (doubles each time)."
    )
    webhook_max_backoff_ms: int = Field(
        3_600_000, ge=100, description="Longest delay between delivery attempts."
    )
    webhook_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Whole time of one webhook attempt: connect, send, answer and drain "
        "together (a receiver that trickles its answer is cut off then).",
    )
    webhook_secret_grace_s: int = Field(
        86_400,
        ge=0,
        description="After a secret rotation, deliveries are signed with the old secret too "
        "for this long, so receivers can switch without missing one.",
    )
    # Safety limits (see docs/security.md)
    egress_allow: str = Field(
        "",
        description="Non-public networks jobs may reach anyway: comma-separated CIDRs, each "
        "optionally with :port or :low-high (e.g. 10.0.0.0/8, 127.0.0.1/32:8080). Empty: public "
        "addresses only.",
    )
    proxy: str | None = Field(
        None,
        description="Proxy URL every yt-dlp request goes through (http://, https://, socks5://). "
        "Unset: direct connections, and HTTP(S)_PROXY/ALL_PROXY in the environment are ignored. "
        "Through a proxy the egress guard judges only the proxy's address (see docs/security.md).",
    )
    max_file_bytes: int = Field(
        8 * 1024**3, ge=1, description="Largest file one job may download, in bytes."
    )
    max_page_bytes: int = Field(
        16 * 1024**2,
        ge=1,
        description="Most bytes of one page, manifest or API answer yt-dlp may read whole into "
        "memory; past it the job fails as page_too_large. Media files are not counted here "
        "(HAUL_MAX_FILE_BYTES bounds them).",
    )
    max_duration_s: float = Field(
        6 * 3600, gt=0, description="Longest media one job may download, in seconds."
    )
    # Per-client limits (see docs/operations.md, "Quotas, rate limits and idempotent
    # submission"); `haul clients limits` overrides each one for a single client.
    client_storage_quota_bytes: int | None = Field(
        None, ge=0, description="Bytes of stored files per client; unset means no quota."
    )
    client_max_subscriptions: int | None = Field(
        None, ge=0, description="Subscriptions a client may have; unset means no limit."
    )
    client_max_active_jobs: int | None = Field(
        None,
        ge=0,
        description="Jobs a client may have queued, retrying or running at once (playlist "
        "entries count); a submission past it is refused. Unset means no limit.",
    )
    client_max_running: int | None = Field(
        None,
        ge=1,
        description="Jobs of one client running at once in the whole fleet (probe and download "
        "together), so one tenant cannot take every worker thread; past it a job waits, held "
        "as client_busy. Unset means no limit.",
    )
    client_requests_per_minute: int | None = Field(
        None,
        ge=1,
        description="API requests per minute per client, with bursts up to that many; past it "
        "the API answers 429. Unset means no limit.",
    )
    idempotency_ttl_s: int = Field(
        86_400,
        ge=1,
        description="How long an Idempotency-Key names the job it created; after that the key "
        "may be used again.",
    )
    generic_extractor: bool = Field(
        True,
        description="Let yt-dlp's generic extractor handle any web page or direct media link; "
        "off limits jobs to sites yt-dlp knows by name.",
    )

    worker_name: str = Field(
        default_factory=_default_worker_name, description="Lease owner name of this process."
    )
    # The fleet's yt-dlp (see docs/operations.md, "Upgrading yt-dlp")
    host_name: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=200,
        description="This machine's name in GET /v1/ytdlp: its worker processes report their "
        "yt-dlp under it, and `haul ytdlp update` reloads the worker runs that share it.",
    )
    host_report_s: float = Field(
        30.0,
        gt=0,
        description="How often each worker process reports its host's yt-dlp version and "
        "JavaScript runtime; a host silent for three of these is shown as gone.",
    )
    run_dir: Path = Field(
        Path(tempfile.gettempdir()) / "haul-runs",
        description="Local directory where each `dramatiq actors` run of this machine notes its "
        "main process and environment, so `haul ytdlp update` can reload it.",
    )
    # Worker metrics (see docs/operations.md, "Watching")
    worker_metrics_port: int | None = Field(
        None,
        ge=0,
        le=65_535,
        description="Port of a worker host's Prometheus endpoint, served by one process per "
        "`dramatiq actors` run for all its worker processes; unset, empty or 0: no endpoint.",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", description="Address the worker's Prometheus endpoint listens on."
    )
    worker_metrics_dir: Path = Field(
        Path(tempfile.gettempdir()) / "haul-worker-metrics",
        description="Local directory where worker processes keep their metric files "
        "(prometheus-client's multiprocess mode); each `dramatiq` run uses a subdirectory.",
    )

    # Dashboard
    secret_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="Signs the dashboard's session cookies and form tokens, and is the key "
        "sites' cookies are encrypted under; shared by every API and worker process. Unset: "
        "a signing secret is generated once and kept in PostgreSQL (app_secrets), and the API "
        "refuses to store cookies (a key kept beside what it encrypts protects nothing).",
    )
    old_secret_keys: SecretStr | None = Field(
        None,
        description="Earlier values of HAUL_SECRET_KEY, comma-separated, during a key rotation: "
        "cookies sealed under them still open; `haul cookies rotate` re-seals them under the "
        'current key (docs/operations.md, "Cookies").',
    )
    cookie_file_max_bytes: int = Field(
        64 * 1024, ge=1_024, description="Largest cookie file `PUT /v1/cookies/{site}` accepts."
    )
    session_max_age_s: int = Field(
        7 * 24 * 3600, ge=60, description="How long a dashboard sign-in lasts."
    )

    # Logs
    log_level: str = Field("INFO", description="Python log level name.")
    log_json: bool | None = Field(
        None, description="JSON log lines; unset means JSON unless stderr is a terminal."
    )

    @field_validator("worker_metrics_port", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if value in ("", 0, "0") else value

    @field_validator("proxy", "secret_key", "old_secret_keys", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable is an unset one (compose passes ``${HAUL_SECRET_KEY:-}`` so)."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.max_backoff_ms < self.min_backoff_ms:
            raise ValueError("HAUL_MAX_BACKOFF_MS must not be below HAUL_MIN_BACKOFF_MS")
        if self.webhook_max_backoff_ms < self.webhook_min_backoff_ms:
            raise ValueError(
                "HAUL_WEBHOOK_MAX_BACKOFF_MS must not be below HAUL_WEBHOOK_MIN_BACKOFF_MS"
            )
        if self.heartbeat_s >= self.lease_s:
            raise ValueError("HAUL_HEARTBEAT_S must be shorter than HAUL_LEASE_S")
        if any(not 0 <= p <= 9 for p in self.tier_priorities.values()):
            raise ValueError("HAUL_TIER_PRIORITIES bounds must be between 0 and 9")
        EgressPolicy.parse(self.egress_allow)  # a typo fails at start, not at the first job
        return self

    @property
    def client_limits(self) -> ClientLimits:
        """The ``HAUL_CLIENT_*`` limits: what holds for a client that has none of its own."""
        return ClientLimits(
            max_active_jobs=self.client_max_active_jobs,
            storage_quota_bytes=self.client_storage_quota_bytes,
            requests_per_minute=self.client_requests_per_minute,
            max_subscriptions=self.client_max_subscriptions,
            max_running=self.client_max_running,
        )

    @property
    def breaker_policy(self) -> BreakerPolicy:
        """When a site's breaker opens and for how long (the ``HAUL_BREAKER_*`` settings)."""
        return BreakerPolicy(
            threshold=self.breaker_threshold,
            window=timedelta(seconds=self.breaker_window_s),
            cooldown=timedelta(seconds=self.breaker_cooldown_s),
            max_cooldown=timedelta(seconds=self.breaker_max_cooldown_s),
        )

    @property
    def egress_policy(self) -> EgressPolicy:
        return _egress_policy(self.egress_allow)

    @property
    def cookie_secrets(self) -> list[str]:
        """The secrets cookies are sealed under, current first; empty when none is set."""
        if self.secret_key is None:
            return []
        old = self.old_secret_keys.get_secret_value() if self.old_secret_keys else ""
        retired = [s.strip() for s in old.split(",") if s.strip()]
        return [self.secret_key.get_secret_value(), *retired]


@lru_cache(maxsize=8)
def _egress_policy(allow: str) -> EgressPolicy:
    """Parsed once per text: every submission asks (``EgressPolicy`` is immutable)."""
    return EgressPolicy.parse(allow)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
