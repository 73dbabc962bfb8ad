"""The SQLModel tables and the Alembic migrations must describe the same schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import service.db.models  # noqa: F401  (registers the tables)
from tests.conftest import RUN_ID, _admin_execute, _db_url

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
    env = {**os.environ, "HAUL_DATABASE_URL": _db_url(name)}
    haul = str(Path(sys.executable).parent / "haul")
    try:
        # When an operator runs `haul migrate`, twice
        first = subprocess.run([haul, "migrate"], env=env, capture_output=True, text=True)
        second = subprocess.run([haul, "migrate"], env=env, capture_output=True, text=True)
        # Then the database exists with haul's tables, and the second run is a no-op
        assert first.returncode == 0, first.stderr
        assert second.returncode == 0, second.stderr
        engine = sa.create_engine(_db_url(name))
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        engine.dispose()
        assert {"clients", "jobs", "job_attempts", "artifacts", "alembic_version"} <= tables
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
