"""Secrets shared by every API process, generated once and kept in ``app_secrets``."""

from __future__ import annotations

from datetime import datetime  # noqa: TC003  (a column type)
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Field, SQLModel

if TYPE_CHECKING:
    from sqlmodel import Session


class AppSecret(SQLModel, table=True):
    """A secret every API process shares, generated once (the dashboard's session key when
    ``HAUL_SECRET_KEY`` is unset). The first process to need it inserts it; the rest read it."""

    __tablename__ = "app_secrets"

    name: str = Field(sa_type=sa.String(64), primary_key=True)
    value: str = Field(sa_type=sa.String(200))
    created_at: datetime | None = Field(
        sa_type=sa.DateTime(timezone=True),
        sa_column_kwargs={"server_default": sa.func.now(), "nullable": False},
    )


def get_or_create(session: Session, name: str, candidate: str) -> str:
    """The stored secret called ``name``; ``candidate`` becomes it when there is none yet.

    Two processes starting at once both insert; ``ON CONFLICT DO NOTHING`` keeps the
    first, and both read back the same value.
    """
    session.execute(insert(AppSecret).values(name=name, value=candidate).on_conflict_do_nothing())
    value = session.execute(select(AppSecret.value).where(AppSecret.name == name)).scalar_one()
    return str(value)
