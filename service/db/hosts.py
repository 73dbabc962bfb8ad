"""``worker_hosts``: what each worker machine runs, as its worker processes report it.

One row per host name (``HAUL_HOST_NAME``), written by every worker process of that
host when it boots and again every ``HAUL_HOST_REPORT_S``: the yt-dlp version its
processes have loaded, the one installed on disk (they differ between ``pip install``
and the reload), and the JavaScript runtime beside it. ``since`` is when the host was
first seen on its current yt-dlp version, so a rollout shows when each host moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003  (a column type)
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Field, SQLModel

if TYPE_CHECKING:
    from sqlmodel import Session

_TIMESTAMP = sa.DateTime(timezone=True)


class WorkerHost(SQLModel, table=True):
    """One worker machine's toolchain, and when it was last heard from."""

    __tablename__ = "worker_hosts"

    host: str = Field(sa_type=sa.String(200), primary_key=True)
    #: The version the host's worker processes have imported (what their attempts record).
    ytdlp_version: str = Field(sa_type=sa.String(32))
    #: The version installed in their environment; another one means a reload is due.
    ytdlp_installed: str | None = Field(default=None, sa_type=sa.String(32))
    ejs_version: str | None = Field(default=None, sa_type=sa.String(32))
    deno_version: str | None = Field(default=None, sa_type=sa.String(32))
    since: datetime | None = Field(
        default=None,
        sa_type=_TIMESTAMP,
        sa_column_kwargs={"server_default": sa.func.now(), "nullable": False},
    )
    last_seen_at: datetime | None = Field(
        default=None,
        sa_type=_TIMESTAMP,
        sa_column_kwargs={"server_default": sa.func.now(), "nullable": False},
    )


@dataclass(frozen=True)
class Seen:
    """A host's row, with how long ago (by the database's clock) it last reported."""

    host: str
    ytdlp_version: str
    ytdlp_installed: str | None
    ejs_version: str | None
    deno_version: str | None
    since: datetime
    last_seen_at: datetime
    silent_s: float


_T = WorkerHost


def report(
    session: Session,
    host: str,
    *,
    ytdlp_version: str,
    ytdlp_installed: str | None,
    ejs_version: str | None,
    deno_version: str | None,
) -> None:
    """Record what a host runs now; ``since`` moves only when its yt-dlp version changed."""
    values = {
        "ytdlp_version": ytdlp_version,
        "ytdlp_installed": ytdlp_installed,
        "ejs_version": ejs_version,
        "deno_version": deno_version,
    }
    stmt = insert(_T).values(host=host, **values)
    changed = _T.ytdlp_version.is_distinct_from(stmt.excluded.ytdlp_version)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["host"],
            set_={
                **values,
                "since": sa.case((changed, sa.func.now()), else_=_T.since),
                "last_seen_at": sa.func.now(),
            },
        )
    )


def seen(session: Session) -> list[Seen]:
    """Every host that ever reported, by name."""
    silent = sa.extract("epoch", sa.func.now() - _T.last_seen_at).label("silent_s")
    rows = session.execute(select(_T, silent).order_by(_T.host)).all()
    return [
        Seen(
            host=h.host,
            ytdlp_version=h.ytdlp_version,
            ytdlp_installed=h.ytdlp_installed,
            ejs_version=h.ejs_version,
            deno_version=h.deno_version,
            since=h.since,
            last_seen_at=h.last_seen_at,
            silent_s=float(s),
        )
        for h, s in rows
    ]
