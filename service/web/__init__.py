"""The dashboard: server-rendered pages (Jinja2 templates), htmx and static assets.

Owns the pages people use in a browser: sign-in (a session cookie, ``intake.sessions``),
jobs (submit, live list, a job's page), and for admin keys the operator pages
(queues, sites, clients). Live updates come from the API's own SSE routes.

May import litestar, the same use cases as ``api`` (``intake``, ``fleet.admin``,
``live``, ``webhooks.endpoints``, ``observe``) and ``db.models`` for row types; never
the rest of ``db``, ``work`` or ``media``. Imported by ``api.app`` only, which serves it.
"""
