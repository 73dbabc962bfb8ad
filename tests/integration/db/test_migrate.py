"""The SQLModel tables and the Alembic migrations must describe the same schema."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import service.db.models  # noqa: F401  (registers the tables)
from service.db.migrate import alembic_config
from service.db.models import Job
from service.intake.clients import create_client
from service.settings import Settings
from tests.support.paths import REPO
from tests.support.postgres import RUN_ID, admin_execute, db_url

if TYPE_CHECKING:
    from service.runtime import Runtime

pytestmark = pytest.mark.integration


def test_models_and_migrations_agree(database_url: str) -> None:
    # Given a database built by the migrations alone
    engine = sa.create_engine(database_url)
    # When Alembic compares it with the models
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    # Then there is nothing to migrate
    assert diff == []


def test_haul_migrate_creates_the_database_and_can_run_again(postgres_template: str) -> None:
    # Given a database name that does not exist yet
    name = f"haul_test_{RUN_ID}_cli_migrate"
    env = {**os.environ, "HAUL_DATABASE_URL": db_url(name)}
    haul = str(Path(sys.executable).parent / "haul")
    try:
        # When an operator runs `haul migrate`, twice
        first = subprocess.run([haul, "migrate"], env=env, capture_output=True, text=True)
        second = subprocess.run([haul, "migrate"], env=env, capture_output=True, text=True)
        # Then the database exists with haul's tables, and the second run is a no-op
        assert first.returncode == 0, first.stderr
        assert second.returncode == 0, second.stderr
        engine = sa.create_engine(db_url(name))
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        engine.dispose()
        assert {"clients", "jobs", "job_attempts", "artifacts", "alembic_version"} <= tables
    finally:
        admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def host_site(url: str) -> str:
    """The site new jobs got from migration 0006 until 0014: the host without ``www.``."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.") if host.count(".") > 1 else host


def test_the_migration_fills_in_sites_as_new_jobs_got_them(runtime: Runtime) -> None:
    """Jobs that existed before migration 0006 get the site new ones got (by host, until 0014)."""
    path = REPO / "infra/migrations/versions/0006_queue_control.py"
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    urls = [
        "https://www.YouTube.com/watch?v=1",
        "http://127.0.0.1:8080/a.mp4",
        "http://[::1]:8080/a",
        "http://www.com/",
        "https://m.example.com/x",
        "http://example.com./x",
    ]
    client, _ = create_client(runtime, "old-rows")
    with runtime.db.session() as session:
        for url in urls:
            session.add(Job(client_id=client.id, url=url, site="unset"))
        session.flush()
        session.execute(sa.text(migration.FILL_SITES))
        filled = dict(
            session.execute(sa.select(Job.url, Job.site).where(Job.client_id == client.id)).all()
        )
    assert filled == {url: host_site(url) for url in urls}


def test_0009_backfills_the_class_of_last_error(database_url: str) -> None:
    # Given the schema before 0009, with waiting jobs whose last_error says what they met
    config = alembic_config(database_url, Settings(_env_file=None).migrations_dir)  # type: ignore[call-arg]
    before = ScriptDirectory.from_config(config).get_revision("0009").down_revision
    command.downgrade(config, str(before))
    engine = sa.create_engine(database_url)
    last_errors = {
        "network: connection reset": "network",
        "http_5xx: HTTP Error 503: Service Unavailable": "http_5xx",
        "KeyError: 'formats'": "KeyError",
        "publish failed: AMQPConnectionError: ": "publish_failed",
        "lease expired: the worker stopped renewing it": "lease_expired",
    }
    with engine.begin() as conn:
        client_id = conn.execute(
            sa.text(
                "INSERT INTO clients (id, name, key_prefix, key_hash, scopes, tier) "
                "VALUES (gen_random_uuid(), 'c', 'hk_0009', 'x', '[]', 'standard') RETURNING id"
            )
        ).scalar_one()
        for last_error in [*last_errors, None]:
            conn.execute(
                sa.text(
                    "INSERT INTO jobs (id, client_id, url, options, metadata, status, step, "
                    "priority, info, attempts, max_attempts, last_error) VALUES "
                    "(gen_random_uuid(), :client, 'https://example.com/v', '{}', '{}', "
                    "'retrying', 'download', 0, '{}', 1, 4, :last_error)"
                ),
                {"client": client_id, "last_error": last_error},
            )

    # When the migrations run up to the head
    command.upgrade(config, "head")

    # Then each row's class is what the old text said, and last_error reads as before
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT last_error, last_error_class FROM jobs")).all())
    engine.dispose()
    assert rows == {**last_errors, None: None}
