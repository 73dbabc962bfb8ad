"""Secrets shared by every API process, generated once and kept in ``app_secrets``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from service.db.models import AppSecret

if TYPE_CHECKING:
    from sqlmodel import Session


def get_or_create(session: Session, name: str, candidate: str) -> str:
    """The stored secret called ``name``; ``candidate`` becomes it when there is none yet.

    Two processes starting at once both insert; ``ON CONFLICT DO NOTHING`` keeps the
    first, and both read back the same value.
    """
    session.execute(insert(AppSecret).values(name=name, value=candidate).on_conflict_do_nothing())
    value = session.execute(select(AppSecret.value).where(AppSecret.name == name)).scalar_one()
    return str(value)
