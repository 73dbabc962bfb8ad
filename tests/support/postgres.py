"""The test PostgreSQL: the admin connection, and the names of this run's databases.

Every database and queue a run creates carries ``RUN_ID``, so runs on one machine
never meet.
"""

from __future__ import annotations

import os
import uuid

import psycopg
from sqlalchemy.engine import make_url

ADMIN_DATABASE_URL = os.environ.get(
    "HAUL_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RUN_ID = uuid.uuid4().hex[:8]


def conninfo(database: str) -> str:
    """A libpq connection string for ``database`` on the test server."""
    url = make_url(ADMIN_DATABASE_URL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


def admin_execute(sql: str) -> None:
    with psycopg.connect(conninfo("postgres"), autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def db_url(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the test server."""
    return make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
