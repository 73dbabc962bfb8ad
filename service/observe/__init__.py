"""Observe: Prometheus metrics of the API (read from the rows at scrape time), of the
workers (multiprocess observations) and RabbitMQ queue depths.

May import ``db`` and the shared modules; ``worker_metrics`` imports nothing of the
project, so any worker module may call it. Imported by ``api``, ``work``, ``fleet``
and ``actors``.
"""
