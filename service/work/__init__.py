"""Work: what a worker does with one job.

Owns the claim, the probe and download steps, how an attempt ends (``outcomes``),
the lease keeper, storage and a job's limits. May import ``domain``, ``db``,
``media``, ``dispatch``, ``observe.worker_metrics``, ``webhooks.outbox`` and
``fleet.gate``; never ``intake`` or the admin side of ``fleet``. Imported by
``actors`` (the steps), ``fleet.sweeps`` (storage, lease ends) and ``intake``
(storage).
"""
