"""Apply the Alembic migrations in ``infra/migrations`` (``haul migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from service.db.engine import ensure_database

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "infra" / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Create the database if missing, then bring its schema to the newest revision."""
    ensure_database(database_url)
    command.upgrade(alembic_config(database_url), "head")
