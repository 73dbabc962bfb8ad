"""Webhooks: the outbox (a delivery row written by the trigger that ends a job, published
after the commit), delivery (claim, POST, record), the client's endpoints, Standard
Webhooks signing and the one HTTP client.

May import ``domain``, ``db``, ``dispatch``, ``egress`` and the shared modules.
Imported by ``work``, ``fleet``, ``intake``, ``api`` and ``actors``.
"""
