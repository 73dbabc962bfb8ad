"""Pure domain rules: job states and attempt outcomes, error classes, queues and holds,
option presets, URL and egress policy, quotas. Imports nothing of the project."""

#: Most rows one periodic or bulk pass takes at a time (a sweep's finders, publishing the
#: webhook outbox, releasing held jobs): work and locks stay bounded, the next pass goes on.
BATCH = 500
