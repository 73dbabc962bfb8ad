"""Fleet: control of the whole worker fleet from the rows.

Owns the worker-side gate release (``gate``), the admin operations (``admin``:
pause, resume, limits per queue, site and client), the periodic sweeps
(``sweeps``), the fleet's yt-dlp versions (``versions``: GET /v1/ytdlp) and a host's
yt-dlp upgrade (``upgrade``: ``haul ytdlp update``). May import ``domain``, ``db``,
``dispatch``, ``work`` (storage, ending), ``webhooks.outbox`` and ``intake.clients``
(``admin`` only). ``gate`` and ``upgrade`` (the run note) are imported by ``work``;
``admin`` and ``versions`` by ``api`` and ``web``; ``sweeps`` by ``actors``;
``upgrade`` by the ``haul`` command.
"""
