"""Queries behind pacing and the breakers of site families: ``site_limits``, ``site_breakers``.

* **Identity.** A job's identity on its site is ``client:<id>`` when its attempt
  would send that client's cookies (it has some for the family, the job did not say
  ``"cookies": false``, and workers hold ``HAUL_SECRET_KEY``), else ``guest``; one SQL
  expression (:func:`identity_sql`) computes it for the gate, the release and the
  outcome, so all three name the same breaker.
* **Breakers** are written only when a site throttles us (:func:`throttled`, the row
  locked, the move decided by ``domain/breaker.py``) and when it recovers
  (:func:`succeeded`, a guarded UPDATE that matches nothing while the breaker is
  closed and clean: the common success costs one primary-key lookup).
* **Pacing** reserves the next start of a site in one upsert (:func:`reserve_start`),
  whose row lock orders the claims of every worker on that site.
"""

from __future__ import annotations

import uuid  # noqa: TC003 (a column type)
from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 (a column type)
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

from service.domain.breaker import GUEST, Admission, Breaker, BreakerState
from service.domain.control import Hold
from service.domain.states import WAITING, Status

if TYPE_CHECKING:
    from datetime import timedelta

    from sqlmodel import Session

    from service.db.models import Job
    from service.domain.breaker import Policy

_NOW = sa.func.now
_WAITING = [s.value for s in Status if s in WAITING]
TIMESTAMP = sa.DateTime(timezone=True)


def _now_column() -> Any:
    return Field(sa_type=TIMESTAMP, sa_column_kwargs={"server_default": _NOW(), "nullable": False})


class SiteLimit(SQLModel, table=True):
    """One site family's settings (set by an admin; None: the default) and its pacing clock.

    A paced site gets a row at its first attempt start even without settings: its
    ``next_start_at`` is when the next attempt may start, reserved by each start.
    """

    __tablename__ = "site_limits"
    __table_args__ = (
        sa.CheckConstraint("max_running IS NULL OR max_running >= 1", name="site_max_running"),
        sa.CheckConstraint(
            "(min_interval_s IS NULL OR min_interval_s BETWEEN 0 AND 86400) AND "
            "(jitter IS NULL OR jitter BETWEEN 0 AND 10)",
            name="site_pacing_valid",
        ),
    )

    site: str = Field(sa_type=sa.String(253), primary_key=True)
    max_running: int | None = None
    min_interval_s: float | None = None
    jitter: float | None = None
    next_start_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    updated_at: datetime | None = _now_column()


class SiteBreaker(SQLModel, table=True):
    """A site family's circuit breaker for one identity (``guest`` or a client's cookies).

    Written only when a site throttles us and when it recovers; see ``domain/breaker.py``.
    """

    __tablename__ = "site_breakers"
    __table_args__ = (
        sa.CheckConstraint(
            "state IN ('closed', 'open', 'half_open')", name="site_breakers_state_valid"
        ),
    )

    site: str = Field(sa_type=sa.String(253), primary_key=True)
    identity: str = Field(sa_type=sa.String(64), primary_key=True)
    state: str = Field(default="closed", sa_type=sa.String(16))
    failures: int = 0
    window_started_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    opens: int = 0
    opened_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    retry_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    #: The job let through while half-open; another goes when it no longer runs.
    trial_job_id: uuid.UUID | None = None
    updated_at: datetime | None = _now_column()


@dataclass(frozen=True)
class SiteDefaults:
    """What holds for a site without its own settings, from the deployment's settings."""

    min_interval_s: float = 0.0
    jitter: float = 0.5
    #: Whether workers can open cookies (``HAUL_SECRET_KEY`` is set): without it every
    #: attempt is a guest's.
    keyed: bool = False


def identity_sql(job: str) -> str:
    """The SQL expression of the identity of the job row aliased ``job`` (needs ``:keyed``);
    ``job`` is an alias written in this package, never input."""
    return (
        f"(CASE WHEN CAST(:keyed AS boolean) "  # noqa: S608
        f"AND COALESCE(CAST({job}.options->>'cookies' AS boolean), true) "
        f"AND EXISTS (SELECT 1 FROM site_cookies sc "
        f"WHERE sc.client_id = {job}.client_id AND sc.site = {job}.site) "
        f"THEN 'client:' || CAST({job}.client_id AS text) ELSE '{GUEST}' END)"
    )


_IDENTITY_OF_JOB = sa.text(
    f"SELECT j.site, {identity_sql('j')} FROM jobs j WHERE j.id = :job_id"  # noqa: S608
)


def identity_of(session: Session, job_id: uuid.UUID, keyed: bool) -> tuple[str | None, str]:
    """The job's site family and identity (``guest`` when it has no site)."""
    row = session.execute(_IDENTITY_OF_JOB, {"job_id": job_id, "keyed": keyed}).first()
    if row is None:
        return None, GUEST
    return row[0], row[1]


def _breaker_of(row: SiteBreaker | None) -> Breaker:
    if row is None:
        return Breaker()
    return Breaker(
        state=BreakerState(row.state),
        failures=row.failures,
        window_started_at=row.window_started_at,
        opens=row.opens,
        retry_at=row.retry_at,
        reason=row.reason,
    )


def _locked(session: Session, site: str, identity: str) -> SiteBreaker | None:
    stmt = (
        sa.select(SiteBreaker)
        .where(SiteBreaker.site == site, SiteBreaker.identity == identity)
        .with_for_update()
    )
    return session.execute(stmt).scalars().first()


def _db_now(session: Session) -> datetime:
    now: datetime = session.execute(sa.select(_NOW())).scalar_one()
    return now


def _write(
    session: Session,
    site: str,
    identity: str,
    after: Breaker,
    *,
    trial_job_id: uuid.UUID | None,
    opened: bool,
) -> SiteBreaker:
    values: dict[str, Any] = {
        "state": after.state.value,
        "failures": after.failures,
        "window_started_at": after.window_started_at,
        "opens": after.opens,
        "retry_at": after.retry_at,
        "reason": after.reason,
        "trial_job_id": trial_job_id,
        "updated_at": _NOW(),
    }
    if opened:
        values["opened_at"] = _NOW()
    insert = postgresql.insert(SiteBreaker).values(site=site, identity=identity, **values)
    stmt = insert.on_conflict_do_update(
        index_elements=[SiteBreaker.site, SiteBreaker.identity], set_=values
    ).returning(SiteBreaker)
    # populate_existing: the row locked above is in the session; it must show what was written.
    options = {"synchronize_session": False, "populate_existing": True}
    return session.execute(stmt.execution_options(**options)).scalars().one()


@dataclass(frozen=True)
class Throttle:
    """A breaker after a throttled attempt: whether this throttle opened it, and until when."""

    state: BreakerState
    opened: bool
    retry_at: datetime | None
    #: The breaker's row as written (what an ``opened`` event reports).
    row: SiteBreaker


def throttled(session: Session, site: str, identity: str, policy: Policy, reason: str) -> Throttle:
    """Count a throttled attempt on the site for the identity; may open the breaker."""
    row = _locked(session, site, identity)
    before = _breaker_of(row)
    after = before.throttled(policy, _db_now(session), reason[:500])
    opened = after.state is BreakerState.OPEN and before.state is not BreakerState.OPEN
    row = _write(session, site, identity, after, trial_job_id=None, opened=opened)
    return Throttle(after.state, opened, after.retry_at, row)


_SUCCEEDED = sa.text(
    f"""
    UPDATE site_breakers b
    SET state = 'closed', failures = 0, window_started_at = NULL, opens = 0, retry_at = NULL,
        trial_job_id = NULL, updated_at = now()
    FROM (SELECT s.site, s.identity, s.state FROM jobs j
          JOIN site_breakers s ON s.site = j.site AND s.identity = {identity_sql("j")}
          WHERE j.id = :job_id FOR UPDATE OF s) o
    WHERE b.site = o.site AND b.identity = o.identity AND (o.state <> 'closed' OR b.failures > 0)
    RETURNING b.site, b.identity, o.state, b.reason
    """  # noqa: S608 (no input is formatted in)
)


class Closed(NamedTuple):
    """A breaker a success closed, and the last throttle's error it had."""

    site: str
    identity: str
    reason: str | None


def succeeded(session: Session, job_id: uuid.UUID, keyed: bool) -> Closed | None:
    """An attempt of the job succeeded: close its site's breaker for its identity.

    Matches nothing (and writes nothing) while that breaker is closed and clean: the
    common success costs one lookup. Returns the breaker when it closed one that was
    open or half-open.
    """
    row = session.execute(_SUCCEEDED, {"job_id": job_id, "keyed": keyed}).first()
    if row is None or row[2] == BreakerState.CLOSED.value:
        return None
    return Closed(row[0], row[1], row[3])


def _trial_running(session: Session, trial_job_id: uuid.UUID | None) -> bool:
    if trial_job_id is None:
        return False
    stmt = sa.text(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = :id AND status = 'running' "
        "AND lease_expires_at > now())"
    )
    return bool(session.execute(stmt, {"id": trial_job_id}).scalar())


def admit(session: Session, site: str, identity: str, job_id: uuid.UUID) -> Admission:
    """Whether the job may start on a breaker that is not closed; takes the trial if due.

    Locks the breaker's row, so two claims cannot both become the trial.
    """
    row = _locked(session, site, identity)
    breaker = _breaker_of(row)
    running = (
        row is not None and row.trial_job_id != job_id and _trial_running(session, row.trial_job_id)
    )
    verdict = breaker.admit(_db_now(session), trial_running=running)
    if verdict is Admission.TRIAL:
        _write(session, site, identity, breaker.trial(), trial_job_id=job_id, opened=False)
    return verdict


def reset(session: Session, site: str) -> list[tuple[SiteBreaker, BreakerState]]:
    """Close every breaker of the site (an admin's ``POST /v1/sites/{site}/reset``); each
    with the state it had (a reset of a closed one closes nothing)."""
    before = (
        sa.select(SiteBreaker.identity, SiteBreaker.state)
        .where(SiteBreaker.site == site)
        .with_for_update()
    )
    was = {identity: BreakerState(state) for identity, state in session.execute(before)}
    stmt = (
        sa.update(SiteBreaker)
        .where(SiteBreaker.site == site)
        .values(
            state=BreakerState.CLOSED.value,
            failures=0,
            window_started_at=None,
            opens=0,
            retry_at=None,
            trial_job_id=None,
            updated_at=_NOW(),
        )
        .returning(SiteBreaker)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(stmt).scalars()
    return [(row, was.get(row.identity, BreakerState.CLOSED)) for row in rows]


def breakers(session: Session) -> list[SiteBreaker]:
    """Every breaker that is open, half-open or counting throttles."""
    stmt = (
        sa.select(SiteBreaker)
        .where(sa.or_(SiteBreaker.state != BreakerState.CLOSED.value, SiteBreaker.failures > 0))
        .order_by(SiteBreaker.site, SiteBreaker.identity)
    )
    return list(session.execute(stmt).scalars())


def cooling_counts(session: Session, keyed: bool) -> dict[tuple[str, str], int]:
    """Jobs held ``site_cooling`` per (site, identity), for the listing and metrics."""
    stmt = sa.text(
        f"SELECT j.site, {identity_sql('j')}, count(*) FROM jobs j "  # noqa: S608
        f"WHERE j.held = '{Hold.SITE_COOLING.value}' "
        f"AND j.status IN ({', '.join(repr(s) for s in _WAITING)}) GROUP BY 1, 2"
    )
    rows = session.execute(stmt, {"keyed": keyed})
    return {(site, identity): int(n) for site, identity, n in rows}


# --- pacing --------------------------------------------------------------------------------------

_RESERVE = sa.text(
    """
    INSERT INTO site_limits AS l (site, next_start_at) VALUES (:site, now() + :gap)
    ON CONFLICT (site) DO UPDATE
        SET next_start_at = GREATEST(l.next_start_at, now()) + :gap
        WHERE l.next_start_at IS NULL OR l.next_start_at <= now() + :horizon
    RETURNING GREATEST(CAST(EXTRACT(EPOCH FROM next_start_at - :gap - now()) AS float), 0)
    """
)


def reserve_start(session: Session, site: str, gap: timedelta, horizon: timedelta) -> float | None:
    """Reserve the site's next attempt start, ``gap`` after the last reserved one.

    Returns in how many seconds this attempt may start (0, or up to ``horizon``); None
    when the reserved starts already reach past the horizon (the job is held
    ``site_paced``).
    """
    params = {"site": site, "gap": gap, "horizon": horizon}
    wait: float | None = session.execute(_RESERVE, params).scalar()
    return wait


def release_paced(session: Session, site: str) -> list[Job]:
    """Clear ``held`` on the best job of the site held ``site_paced``; the caller publishes it."""
    from service.db.models import Job

    pick = (
        sa.select(Job.id)
        .where(
            Job.held == Hold.SITE_PACED.value,
            Job.site == site,
            Job.status.in_(_WAITING),
        )
        .order_by(Job.priority.desc(), Job.queued_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        sa.update(Job)
        .where(Job.id == pick, Job.held == Hold.SITE_PACED.value)
        .values(held=None, updated_at=_NOW())
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(stmt).scalars())


def put_site(session: Session, site: str, values: dict[str, Any]) -> SiteLimit:
    """An admin's settings for the site: the fields given (None: back to the default)."""
    insert = postgresql.insert(SiteLimit).values(site=site, **values)
    stmt = insert.on_conflict_do_update(
        index_elements=[SiteLimit.site],
        set_={**{k: getattr(insert.excluded, k) for k in values}, "updated_at": _NOW()},
    ).returning(SiteLimit)
    return session.execute(stmt.execution_options(synchronize_session=False)).scalars().one()


def site_rows(session: Session) -> list[SiteLimit]:
    """Every site with settings or a pacing clock."""
    return list(session.execute(sa.select(SiteLimit).order_by(SiteLimit.site)).scalars())
