"""Apply the Alembic migrations in ``infra/migrations`` (``haul migrate``), and say where
a database stands (``haul doctor``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from service.db.engine import ensure_database
from service.errors import ServiceUnavailable

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


def revisions(database_url: str, migrations_dir: Path) -> tuple[str | None, str | None]:
    """The database's schema revision (None: never migrated) and the newest one there is.

    For ``haul doctor``; raises :class:`ServiceUnavailable` naming why when the
    database cannot be reached (or does not exist yet).
    """
    newest = ScriptDirectory.from_config(alembic_config(database_url, migrations_dir))
    engine = sa.create_engine(database_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ServiceUnavailable(reason) from exc
    finally:
        engine.dispose()
    return current, newest.get_current_head()
