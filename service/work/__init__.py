"""Work: what a worker does with one job.

Owns the claim, the probe and download steps, how an attempt ends (``outcomes``),
the one way a job ends (``ending``), the lease keeper, storage, a job's limits, the
room a client's held entries are given (``room``) and a worker process's report of its
host (``host``). May import ``domain``, ``db``, ``media``, ``dispatch``,
``observe.worker_metrics``, ``webhooks.outbox``, ``fleet.gate`` and ``fleet.upgrade``
(the run note); never ``intake`` or the admin side of ``fleet``. Imported by ``actors``
(the steps), ``fleet.sweeps`` (storage, ending) and ``intake`` (storage, ending, room: a
user's cancel and delete end jobs the way a worker does, and make room the same way).
"""
