"""Fleet: control of the whole worker fleet from the rows.

Owns the worker-side gate release (``gate``), the admin operations (``admin``:
pause, resume, limits per queue, site and client) and the periodic sweeps
(``sweeps``). May import ``domain``, ``db``, ``dispatch``, ``work`` (storage,
ending), ``webhooks.outbox`` and ``intake.clients`` (``admin`` only). ``gate`` is imported by
``work``; ``admin`` by ``api`` and ``web``; ``sweeps`` by ``actors``.
"""
