"""The SQLModel tables and the Alembic migrations must describe the same schema."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import service.db.models  # noqa: F401  (registers the tables)

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
