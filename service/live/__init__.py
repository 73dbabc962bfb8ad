"""Live: the LISTEN hub (one connection per API process, fanned out to subscribers)
and each subscriber's view (snapshot, ``Last-Event-ID`` replay, live changes).

May import ``domain``, ``db`` and the shared modules. Imported by ``api`` and ``web``.
"""
