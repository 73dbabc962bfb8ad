"""Bodies of ``/v1/subscriptions``, as pydantic models (they make the OpenAPI schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.api.schemas import _has_nul
from service.db.models import EntryState
from service.domain.options import JobOptions, Preset
from service.subscriptions.filters import Filters

if TYPE_CHECKING:
    from service.db.models import SubscriptionEntry
    from service.subscriptions.manage import SubscriptionView

_URL = Field(min_length=1, max_length=2048)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("metadata", check_fields=False)
    @classmethod
    def _storable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """PostgreSQL's jsonb cannot hold a NUL character; refuse it up front."""
        if value is not None and _has_nul(value):
            raise ValueError("metadata must not contain NUL (\\u0000) characters")
        return value


class CreateSubscription(_Body):
    """``POST /v1/subscriptions``: what to follow, how often, and what to download of it."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="An http(s) URL of a feed, channel or playlist, on a public address. "
        "An unreachable one is accepted; its first check says what is wrong.",
    )
    preset: Preset | None = Field(None, description="For the entries' jobs: best (default), …")
    options: JobOptions | None = Field(None, description="Overrides on top of the preset.")
    interval_s: int = Field(
        3600, ge=1, description="Seconds between checks; at least HAUL_SUBSCRIPTION_MIN_INTERVAL_S."
    )
    filters: Filters | None = Field(None, description="Which new entries are downloaded.")
    backfill: Literal["none", "all"] | int = Field(
        "none",
        description='What the first check downloads: "none" (only later entries), "all", '
        "or a number N (the newest N).",
    )
    keep_last: int | None = Field(
        None, ge=1, description="Keep only the newest N files of this subscription."
    )
    callback_url: str | None = Field(
        None, min_length=1, max_length=2048, description="Receives each entry job's event."
    )
    metadata: dict[str, Any] | None = Field(None, description="Copied onto each entry's job.")

    @field_validator("backfill")
    @classmethod
    def _positive(cls, value: str | int) -> str | int:
        if isinstance(value, int) and not 1 <= value <= 10_000:
            raise ValueError("a numeric backfill must be between 1 and 10000")
        return value


class ChangeSubscription(_Body):
    """``PATCH /v1/subscriptions/{id}``: only the fields given change."""

    interval_s: int | None = Field(None, ge=1)
    filters: Filters | None = None
    preset: Preset | None = Field(None, description="For entries found from now on.")
    options: JobOptions | None = Field(None, description="For entries found from now on.")
    keep_last: int | None = Field(None, ge=1)
    callback_url: str | None = Field(None, min_length=1, max_length=2048)
    metadata: dict[str, Any] | None = None
    paused: bool | None = Field(None, description="Pause or resume the checks.")


class LastCheck(BaseModel):
    at: datetime | None
    outcome: Literal["ok", "failed"] | None
    error: str | None


class CheckJob(BaseModel):
    """A subscription's newest check: a job of kind ``check`` (``GET /v1/jobs/{id}`` shows
    its attempts and errors)."""

    id: uuid.UUID
    status: str
    attempts: int
    last_error: str | None


class SubscriptionOut(BaseModel):
    """A subscription and what its checks found."""

    id: uuid.UUID
    client_id: uuid.UUID
    url: str
    options: dict[str, Any]
    metadata: dict[str, Any]
    interval_s: int
    filters: dict[str, Any]
    backfill: Literal["none", "all"] | int
    keep_last: int | None
    callback_url: str | None
    paused: bool
    paused_reason: str | None
    last_check: LastCheck
    check: CheckJob | None = Field(description="Its newest check job; null before the first.")
    next_check_at: datetime | None = Field(description="Null while paused.")
    consecutive_failures: int
    entries_seen: int
    jobs: dict[str, int] = Field(description="The jobs its entries made, by status.")
    bytes_stored: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: SubscriptionView) -> SubscriptionOut:
        sub = view.sub
        assert sub.created_at is not None and sub.updated_at is not None
        paused = sub.paused_at is not None
        return cls(
            id=sub.id,
            client_id=sub.client_id,
            url=sub.url,
            options=sub.options,
            metadata=sub.user_metadata,
            interval_s=sub.interval_s,
            filters=sub.filters,
            backfill=sub.backfill if sub.backfill in ("none", "all") else int(sub.backfill),
            keep_last=sub.keep_last,
            callback_url=sub.callback_url,
            paused=paused,
            paused_reason=sub.paused_reason,
            last_check=LastCheck(
                at=sub.last_checked_at,
                outcome=sub.last_outcome,
                error=sub.last_error,
            ),
            check=None
            if view.check is None
            else CheckJob(
                id=view.check.id,
                status=view.check.status,
                attempts=view.check.attempts,
                last_error=view.check.last_error,
            ),
            next_check_at=None if paused else sub.next_check_at,
            consecutive_failures=sub.consecutive_failures,
            entries_seen=view.entries_seen,
            jobs=view.jobs,
            bytes_stored=view.bytes_stored,
            created_at=sub.created_at,
            updated_at=sub.updated_at,
        )


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]
    next_cursor: str | None


class EntryOut(BaseModel):
    """An entry a check saw: its job if one was made, else why not (``state``, ``reason``)."""

    key: str
    url: str
    title: str | None
    duration_s: float | None
    published_at: datetime | None
    state: EntryState = Field(
        description="queued (a job was made), pending (waiting for admission), filtered, "
        "before_backfill, duplicate (an earlier job of yours has it)."
    )
    reason: str | None
    job_id: uuid.UUID | None = Field(description="Null when none was made, or it was deleted.")
    job_status: str | None
    seen_at: datetime

    @classmethod
    def of(cls, entry: SubscriptionEntry, job_status: str | None) -> EntryOut:
        assert entry.seen_at is not None
        return cls(
            key=entry.key,
            url=entry.url,
            title=entry.title,
            duration_s=entry.duration_s,
            published_at=entry.published_at,
            state=EntryState(entry.state),
            reason=entry.reason,
            job_id=entry.job_id,
            job_status=job_status,
            seen_at=entry.seen_at,
        )


class EntryPage(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None
