"""Subscriptions: follow a feed, channel or playlist and download what is new, once.

Owns: the subscription use cases (``manage``: create, read, list, change, delete,
check now), the scheduler's tick (``schedule``: claim due subscriptions, make their
check jobs), a check (``check``: a job of kind ``check``; list the feed, record entries
once, admit new ones as jobs), the filter and backfill rules (``filters``, pure),
``keep`` (keep_last) and ``events`` (what a check found or why it failed, to the
client's webhook and live stream).

May import: domain, db, media (to list a feed; only media imports yt_dlp), dispatch,
intake.admission (new entries pass the client's quotas as any job), webhooks.endpoints
(a callback URL is checked as a job's), webhooks.outbox (its events are deliveries whose
subject is the subscription), work.storage (files removed by keep_last and delete),
work.claim, work.lease, work.outcomes and work.ending (a check is a job: it is claimed,
keeps its lease and ends as any job does). Imported by: api (the controller), actors
(the tick and the check).
"""
