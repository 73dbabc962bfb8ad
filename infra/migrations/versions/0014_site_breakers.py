"""sites fight back: per-site pacing and a breaker per site family and identity

Jobs name their site by family (``youtu.be`` and ``www.youtube.com`` are
``youtube.com``); rows that existed before are renamed, and site limits set for
hosts of one family are merged (the lowest limit wins). ``site_limits`` gains the
pacing settings and clock (``max_running`` may now be unset); ``site_breakers`` is
new; ``held`` may say ``site_cooling`` or ``site_paced``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.domain.sites import NotASite, family_of_host

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
HOLDS_BEFORE = (
    "'queue_paused', 'client_paused', 'queue_full', 'site_full', 'client_full', 'client_busy'"
)
HOLDS = f"{HOLDS_BEFORE}, 'site_cooling', 'site_paced'"


#: Admins' live streams learn of every move of a breaker (``kind: site``) on the channel
#: job changes use; a change that keeps the state (a throttle counted) is announced too.
BREAKER_CHANGED = """
CREATE FUNCTION haul_site_breaker_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('haul_jobs', json_build_object(
        'kind', 'site',
        'site', NEW.site,
        'identity', NEW.identity,
        'state', NEW.state,
        'failures', NEW.failures,
        'opens', NEW.opens,
        'retry_at', NEW.retry_at,
        'reason', left(NEW.reason, 500),
        'updated_at', NEW.updated_at
    )::text);
    RETURN NULL;
END
$$
"""


def _family(site: str) -> str:
    try:
        return family_of_host(site)
    except NotASite:
        return site


def _rename_sites() -> None:
    """Jobs and site limits keyed by host become keyed by site family."""
    bind = op.get_bind()
    sites = [s for (s,) in bind.execute(sa.text("SELECT DISTINCT site FROM jobs")) if s]
    for site in sites:
        family = _family(site)
        if family != site:
            bind.execute(
                sa.text("UPDATE jobs SET site = :family WHERE site = :site"),
                {"family": family, "site": site},
            )
    limits = bind.execute(sa.text("SELECT site, max_running FROM site_limits")).all()
    merged: dict[str, int] = {}
    for site, max_running in limits:
        family = _family(site)
        merged[family] = min(max_running, merged.get(family, max_running))
    bind.execute(sa.text("DELETE FROM site_limits"))
    for family, max_running in merged.items():
        bind.execute(
            sa.text("INSERT INTO site_limits (site, max_running) VALUES (:site, :max_running)"),
            {"site": family, "max_running": max_running},
        )


def upgrade() -> None:
    _rename_sites()
    op.alter_column("site_limits", "max_running", existing_type=sa.Integer(), nullable=True)
    op.drop_constraint("site_max_running", "site_limits", type_="check")
    op.create_check_constraint(
        "site_max_running", "site_limits", "max_running IS NULL OR max_running >= 1"
    )
    op.add_column("site_limits", sa.Column("min_interval_s", sa.Float(), nullable=True))
    op.add_column("site_limits", sa.Column("jitter", sa.Float(), nullable=True))
    op.add_column("site_limits", sa.Column("next_start_at", TIMESTAMP, nullable=True))
    op.create_check_constraint(
        "site_pacing_valid",
        "site_limits",
        "(min_interval_s IS NULL OR min_interval_s BETWEEN 0 AND 86400) AND "
        "(jitter IS NULL OR jitter BETWEEN 0 AND 10)",
    )
    op.create_table(
        "site_breakers",
        sa.Column("site", sa.String(253), nullable=False),
        sa.Column("identity", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", TIMESTAMP, nullable=True),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("opened_at", TIMESTAMP, nullable=True),
        sa.Column("retry_at", TIMESTAMP, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("trial_job_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "state IN ('closed', 'open', 'half_open')", name="site_breakers_state_valid"
        ),
        sa.PrimaryKeyConstraint("site", "identity"),
    )
    op.execute(BREAKER_CHANGED)
    op.execute(
        "CREATE TRIGGER site_breakers_changed AFTER INSERT OR UPDATE ON site_breakers "
        "FOR EACH ROW EXECUTE FUNCTION haul_site_breaker_changed()"
    )
    op.drop_constraint("jobs_held_valid", "jobs", type_="check")
    op.create_check_constraint("jobs_held_valid", "jobs", f"held IS NULL OR held IN ({HOLDS})")


def downgrade() -> None:
    op.execute("UPDATE jobs SET held = NULL WHERE held IN ('site_cooling', 'site_paced')")
    op.drop_constraint("jobs_held_valid", "jobs", type_="check")
    op.create_check_constraint(
        "jobs_held_valid", "jobs", f"held IS NULL OR held IN ({HOLDS_BEFORE})"
    )
    op.execute("DROP TRIGGER site_breakers_changed ON site_breakers")
    op.execute("DROP FUNCTION haul_site_breaker_changed()")
    op.drop_table("site_breakers")
    op.drop_constraint("site_pacing_valid", "site_limits", type_="check")
    op.drop_column("site_limits", "next_start_at")
    op.drop_column("site_limits", "jitter")
    op.drop_column("site_limits", "min_interval_s")
    op.execute("DELETE FROM site_limits WHERE max_running IS NULL")
    op.drop_constraint("site_max_running", "site_limits", type_="check")
    op.create_check_constraint("site_max_running", "site_limits", "max_running >= 1")
    op.alter_column("site_limits", "max_running", existing_type=sa.Integer(), nullable=False)
