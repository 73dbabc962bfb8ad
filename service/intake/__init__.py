"""Intake: what the API does for a client.

Owns submission (jobs), admission (idempotency keys, dedupe, quotas), request
rates, replay, and API clients (keys, limits). May import ``domain``, ``db``,
``dispatch``, ``webhooks`` (endpoints), ``work.storage`` (a job's files),
``work.ending`` (cancel and delete end jobs through it) and the shared modules.
Imported by ``api``, ``web`` and the CLI; never by ``work``, ``fleet`` or ``actors``.
"""
