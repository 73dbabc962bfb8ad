"""Intake: what the API does for a client.

Owns submission (jobs), admission (idempotency keys, dedupe, quotas), request
rates, replay, and API clients (keys, limits). May import ``domain``, ``db``,
``dispatch``, ``webhooks`` (announce, endpoints), ``work.storage`` (a job's files)
and the shared modules. Imported by ``api``, ``web`` and the CLI; never by ``work``,
``fleet`` or ``actors``.
"""
