"""A job's bounds for one attempt: file size, duration, egress, and what is left of its
client's storage quota (read by the claim); and the same bounds checked again
on the final file, when it is stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.db import artifacts as artifact_rows
from service.domain.errors import ErrorClass
from service.errors import Permanent
from service.media.limits import Limits

if TYPE_CHECKING:
    import uuid

    from service.db.models import Job
    from service.runtime import Runtime


def limits_for(rt: Runtime, job: Job, *, quota: int | None = None) -> Limits:
    """This job's bounds from the settings; a download also stays within its client's
    ``quota`` (bytes, as the claim read it; None: no quota)."""
    settings = rt.settings
    max_bytes, name = settings.max_file_bytes, "HAUL_MAX_FILE_BYTES"
    if quota is not None:
        with rt.db.session() as session:
            room = quota - artifact_rows.bytes_stored(session, job.client_id)
        if room <= 0:
            raise Permanent(
                f"the client's storage quota ({quota} bytes) is used up",
                error_class=ErrorClass.QUOTA,
            )
        if room < max_bytes:
            max_bytes, name = room, "the client's storage quota"
    return Limits(
        egress=settings.egress_policy,
        max_bytes=max_bytes,
        max_bytes_name=name,
        max_duration_s=settings.max_duration_s,
        generic_extractor=settings.generic_extractor,
        proxy=settings.proxy,
        max_page_bytes=settings.max_page_bytes,
    )


def check_file_size(rt: Runtime, size: int) -> None:
    """The final file (after merging and transcoding) must be within ``HAUL_MAX_FILE_BYTES``:
    the bytes checked while they arrived are not the bytes post-processing wrote."""
    most = rt.settings.max_file_bytes
    if size > most:
        raise Permanent(
            f"the stored file ({size} bytes) is larger than HAUL_MAX_FILE_BYTES ({most} bytes)",
            error_class=ErrorClass.TOO_LARGE,
        )


def check_quota_room(session: Any, client_id: uuid.UUID, size: int, quota: int | None) -> None:
    """Whether a file of ``size`` bytes fits the client's ``quota`` with what it already
    stores, decided under the client's storage lock in the transaction that writes the
    artifact (concurrent attempts each saw the whole room when they started)."""
    if quota is None:
        return
    stored = artifact_rows.stored_under_lock(session, client_id)
    if stored + size > quota:
        raise Permanent(
            f"the file ({size} bytes) does not fit the client's storage quota ({quota} bytes; "
            f"{stored} bytes stored)",
            error_class=ErrorClass.QUOTA,
        )
