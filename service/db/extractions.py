"""``job_extractions``: what a probe learned about a single item, for its download step.

The probe extracts the URL once; when it finds one item it keeps yt-dlp's sanitized
info dict here, written by the statement that closes its attempt (:func:`kept`). The
download's claim takes it in its own statement (:func:`taken_by`: ``DELETE …
RETURNING``), so it is read at most once: a retried attempt extracts afresh.

A table of its own, not a column of ``jobs``: the info can be large, and the job row
is what triggers snapshot into webhook bodies and ``NOTIFY`` to watchers.
"""

from __future__ import annotations

import uuid  # noqa: TC003  (SQLModel reads annotations at run time)
from datetime import datetime  # noqa: TC003  (a column type)
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import Field, SQLModel


class JobExtraction(SQLModel, table=True):
    """A probed item's info dict, waiting for its download step."""

    __tablename__ = "job_extractions"

    job_id: uuid.UUID = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("jobs.id", ondelete="CASCADE")]
    )
    info: dict[str, Any] = Field(sa_type=JSONB)
    created_at: datetime | None = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
        sa_column_kwargs={"server_default": sa.func.now(), "nullable": False},
    )


_TABLE = JobExtraction.__table__


def taken_by(claimed: Any) -> Any:
    """A CTE that takes the info of the job a claim took (``claimed``: a CTE with ``id``
    and ``step``), for the claim's one statement to return; only a download takes it."""
    return (
        sa.delete(_TABLE)
        .where(
            _TABLE.c.job_id
            == sa.select(claimed.c.id).where(claimed.c.step == "download").scalar_subquery()
        )
        .returning(_TABLE.c.info)
        .cte("taken")
    )


def kept(job_id: uuid.UUID, info: dict[str, Any]) -> Any:
    """Keep the probe's info for the job's download step (replacing an older one), as a
    CTE for the statement that closes the probe's attempt (``attempts.finish``)."""
    return (
        insert(_TABLE)
        .values(job_id=job_id, info=info)
        .on_conflict_do_update(
            index_elements=[_TABLE.c.job_id],
            set_={"info": insert(_TABLE).excluded.info, "created_at": sa.func.now()},
        )
        .cte("kept")
    )
