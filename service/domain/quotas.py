"""A client's limits: its own values where an operator set them, the deployment's elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ClientLimits:
    """How much one client may have or do; None means no limit."""

    #: Jobs queued, retrying or running at once (playlist entries count).
    max_active_jobs: int | None = None
    #: Bytes of stored files.
    storage_quota_bytes: int | None = None
    #: API requests per minute (bursts of up to that many).
    requests_per_minute: int | None = None
    #: Subscriptions at once.
    max_subscriptions: int | None = None
    #: Jobs running at once, fleet-wide (probe and download together); past it, held.
    max_running: int | None = None

    def over(self, defaults: ClientLimits) -> ClientLimits:
        """These limits where set, ``defaults`` where not."""
        return ClientLimits(
            *(
                own if (own := getattr(self, name)) is not None else getattr(defaults, name)
                for name in _NAMES
            )
        )


#: The limits' names, in field order (``astuple`` deep-copies: every request asks).
_NAMES = tuple(f.name for f in fields(ClientLimits))
