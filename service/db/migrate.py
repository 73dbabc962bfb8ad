"""Apply the Alembic migrations in ``infra/migrations`` (``haul migrate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

from service.db.engine import ensure_database

if TYPE_CHECKING:
    from pathlib import Path


def alembic_config(database_url: str, migrations_dir: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, migrations_dir: Path) -> None:
    """Create the database if missing, then bring its schema to the newest revision."""
    ensure_database(database_url)
    command.upgrade(alembic_config(database_url, migrations_dir), "head")
