"""``Settings`` reads ``HAUL_*`` variables; its defaults work on a developer machine."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from service.settings import Settings

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HAUL_* variable of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("HAUL_"):
            monkeypatch.delenv(name)


def load() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_defaults_point_at_localhost() -> None:
    settings = load()

    assert urlsplit(settings.database_url).hostname in LOCAL_HOSTS
    assert urlsplit(settings.broker_url).hostname in LOCAL_HOSTS
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.broker_url.startswith("amqp://")


def test_defaults_keep_files_relative_to_the_working_directory() -> None:
    settings = load()

    assert settings.storage_dir == Path("data/files")
    assert settings.temp_dir == Path("data/tmp")
    assert settings.queue_prefix == "haul"


def test_reads_haul_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a deployment configured through the environment
    monkeypatch.setenv("HAUL_DATABASE_URL", "postgresql+psycopg://haul@db.internal:5432/haul")
    monkeypatch.setenv("HAUL_BROKER_URL", "amqp://haul:pw@mq.internal:5672/haul")
    monkeypatch.setenv("HAUL_QUEUE_PREFIX", "staging")
    monkeypatch.setenv("HAUL_STORAGE_DIR", "/var/lib/haul/files")
    monkeypatch.setenv("HAUL_LEASE_S", "90")
    monkeypatch.setenv("HAUL_HEARTBEAT_S", "2.5")
    monkeypatch.setenv("HAUL_MAX_RETRIES", "0")
    monkeypatch.setenv("HAUL_LOG_JSON", "false")

    # When the settings are loaded
    settings = load()

    # Then each variable lands in its field, with its type
    assert settings.database_url == "postgresql+psycopg://haul@db.internal:5432/haul"
    assert settings.broker_url == "amqp://haul:pw@mq.internal:5672/haul"
    assert settings.queue_prefix == "staging"
    assert settings.storage_dir == Path("/var/lib/haul/files")
    assert settings.lease_s == 90
    assert settings.heartbeat_s == 2.5
    assert settings.max_retries == 0
    assert settings.log_json is False


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("haul_queue_prefix", "lower")

    assert load().queue_prefix == "lower"


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://elsewhere/other")

    assert urlsplit(load().database_url).hostname in LOCAL_HOSTS


def test_explicit_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAUL_QUEUE_PREFIX", "from-env")

    settings = Settings(_env_file=None, queue_prefix="explicit")  # type: ignore[call-arg]

    assert settings.queue_prefix == "explicit"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HAUL_LEASE_S", "1"),
        ("HAUL_LEASE_S", "sixty"),
        ("HAUL_HEARTBEAT_S", "0"),
        ("HAUL_MAX_RETRIES", "-1"),
        ("HAUL_MIN_BACKOFF_MS", "10"),
        ("HAUL_REPUBLISH_AFTER_S", "5"),
        ("HAUL_PLAYLIST_MAX_ENTRIES", "0"),
        ("HAUL_LOG_JSON", "maybe"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=f"(?i){name.removeprefix('HAUL_')}"):
        load()


@pytest.mark.parametrize(
    ("old", "new", "field", "value"),
    [
        ("HAUL_LEASE_SECONDS", "HAUL_LEASE_S", "lease_s", 90),
        ("HAUL_HEARTBEAT_SECONDS", "HAUL_HEARTBEAT_S", "heartbeat_s", 2.5),
        ("HAUL_PLAYLIST_PROGRESS_SECONDS", "HAUL_PLAYLIST_PROGRESS_S", "playlist_progress_s", 0.5),
    ],
)
def test_a_renamed_duration_still_reads_its_old_variable(
    monkeypatch: pytest.MonkeyPatch, old: str, new: str, field: str, value: float
) -> None:
    # Given a deployment still configured with the name a duration had before it said its unit
    monkeypatch.setenv(old, str(value))

    # When the settings are loaded, Then the old variable sets the renamed field
    assert getattr(load(), field) == value

    # And when both are set, the new name wins
    monkeypatch.setenv(new, str(value * 2))
    assert getattr(load(), field) == value * 2


def test_renamed_durations_are_refused_under_either_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAUL_LEASE_SECONDS", "1")

    with pytest.raises(ValidationError, match="HAUL_LEASE_S"):
        load()


def test_units_are_named_one_way() -> None:
    # A duration ends in _s or _ms, never in a spelled-out unit
    spelled = re.compile(r"_(seconds|secs|minutes|mins|millis|milliseconds|hours)$")

    assert not [name for name in Settings.model_fields if spelled.search(name)]
    assert {"lease_s", "heartbeat_s", "sse_heartbeat_s", "min_backoff_ms"} <= set(
        Settings.model_fields
    )


@pytest.mark.parametrize(("value", "port"), [("", None), ("0", None), ("9191", 9191)])
def test_the_worker_metrics_endpoint_is_off_unless_a_port_is_given(
    monkeypatch: pytest.MonkeyPatch, value: str, port: int | None
) -> None:
    monkeypatch.setenv("HAUL_WORKER_METRICS_PORT", value)

    assert load().worker_metrics_port == port


@pytest.mark.parametrize(
    ("value", "proxy"), [("", None), ("socks5://10.0.0.9:1080", "socks5://10.0.0.9:1080")]
)
def test_a_proxy_is_used_only_when_named(
    monkeypatch: pytest.MonkeyPatch, value: str, proxy: str | None
) -> None:
    monkeypatch.setenv("HAUL_PROXY", value)
    monkeypatch.setenv("HTTPS_PROXY", "http://from-the-environment:8080")

    assert load().proxy == proxy


def test_an_empty_secret_key_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # compose passes ${HAUL_SECRET_KEY:-}: empty when the operator set none
    monkeypatch.setenv("HAUL_SECRET_KEY", "")
    monkeypatch.setenv("HAUL_OLD_SECRET_KEYS", "")

    settings = load()

    assert settings.secret_key is None and settings.cookie_secrets == []
