"""A jobs table of a given size, generated in SQL in one pass (no Python per row).

Shaped like a service that has run for 90 days: half the rows belong to one big
client (for deep pages), the rest to 99 small ones; 92% succeeded, 4% failed,
3% cancelled; one row in ten is a playlist child. Only the newest 0.3% are still
in flight (queued, running, retrying), as in a healthy deployment, with a few of
each kind the sweeps exist for: stale queued rows, expired leases, overdue
retries, playlist parents whose children all ended. Every succeeded job has its
artifact row. Job attempts are not generated (no query of the benchmark reads them).
"""

from __future__ import annotations

import json

import psycopg

from bench.infra import conninfo
from service.domain.options import normalize

#: Rows numbered i = 1..n, oldest first; j = n - i counts back from the newest.
JOBS = """
WITH numbered AS (
    SELECT i, %(n)s - i AS j, md5('job' || i)::uuid AS id,
           now() - (%(n)s - i) * (interval '90 days' / %(n)s) AS created,
           (%(n)s - i) < %(active)s AS recent,
           i %% 100 AS slot
    FROM generate_series(1, %(n)s) AS i
), shaped AS (
    SELECT *,
        CASE
            WHEN slot = 0 AND recent THEN 'parent_running'
            WHEN recent AND j %% 10 < 6 THEN 'queued'
            WHEN recent AND j %% 10 < 8 THEN 'running'
            WHEN recent AND j %% 10 = 8 THEN 'retrying'
            WHEN recent THEN 'succeeded'
            WHEN slot < 92 THEN 'succeeded'
            WHEN slot < 96 THEN 'failed'
            ELSE 'cancelled'
        END AS kind
    FROM numbered
)
INSERT INTO jobs (
    id, client_id, parent_id, url, options, metadata, status, phase, step, priority,
    progress, bytes_done, bytes_total, info, attempts, max_attempts, lease_owner,
    lease_expires_at, error_class, error_message, last_error, next_attempt_at,
    created_at, queued_at, published_at, started_at, finished_at, updated_at
)
SELECT
    id,
    CASE WHEN i %% 2 = 0 THEN %(big)s::uuid ELSE (%(small)s::uuid[])[1 + i %% 99] END,
    CASE WHEN slot BETWEEN 1 AND 9 THEN md5('job' || (i - slot))::uuid END,
    'https://media.example/v/' || i,
    %(options)s::jsonb,
    '{}'::jsonb,
    CASE WHEN kind = 'parent_running' THEN 'running' ELSE kind END,
    CASE kind WHEN 'running' THEN 'downloading'
              WHEN 'parent_running' THEN 'awaiting_children' END,
    CASE WHEN slot = 0 THEN 'probe' ELSE 'download' END,
    0,
    CASE kind WHEN 'succeeded' THEN 1.0 WHEN 'running' THEN 0.5 END,
    CASE kind WHEN 'succeeded' THEN 1000000 WHEN 'running' THEN 500000 END,
    CASE WHEN kind IN ('succeeded', 'running') THEN 1000000 END,
    jsonb_build_object('title', 'Video ' || i, 'extractor', 'Generic'),
    CASE WHEN kind = 'queued' THEN 0 ELSE 1 END,
    4,
    CASE WHEN kind = 'running' THEN 'bench-worker:1/' || i END,
    CASE WHEN kind = 'running' THEN
        CASE WHEN j %% 50 = 6 THEN now() - interval '10 s' ELSE now() + interval '1 day' END
    END,
    CASE kind WHEN 'failed' THEN 'http_404' END,
    CASE kind WHEN 'failed' THEN 'HTTP Error 404: Not Found' END,
    CASE kind WHEN 'retrying' THEN 'http_5xx: HTTP Error 503' END,
    CASE WHEN kind = 'retrying' THEN
        CASE WHEN j %% 100 = 8 THEN now() - interval '50 min' ELSE now() + interval '60 s' END
    END,
    created,
    CASE WHEN kind = 'queued' THEN
        CASE WHEN j %% 100 = 0 THEN now() - interval '10 min'
             ELSE now() - (j %% 60) * interval '1 s' END
        ELSE created END,
    CASE
        WHEN kind = 'queued' AND j %% 100 = 0 THEN NULL
        WHEN kind = 'queued' THEN now() - (j %% 60) * interval '1 s' + interval '10 ms'
        WHEN kind = 'retrying' AND j %% 100 = 8 THEN now() - interval '1 hour'
        ELSE created + interval '10 ms'
    END,
    CASE WHEN kind <> 'queued' THEN created + interval '1 s' END,
    CASE WHEN kind IN ('succeeded', 'failed', 'cancelled') THEN created + interval '30 s' END,
    CASE
        WHEN kind IN ('succeeded', 'failed', 'cancelled') THEN created + interval '30 s'
        WHEN kind = 'retrying' AND j %% 100 = 8 THEN now() - interval '1 hour'
        ELSE now() - interval '5 s'
    END
FROM shaped
"""

ARTIFACTS = """
INSERT INTO artifacts (id, job_id, client_id, path, filename, size, sha256, mime, duration,
                       title, created_at)
SELECT md5('artifact' || id::text)::uuid, id, client_id,
       client_id::text || '/' || id::text || '/video.mp4', 'video.mp4', 1000000,
       md5(id::text) || md5(url), 'video/mp4', 60.0, info->>'title', finished_at
FROM jobs WHERE status = 'succeeded'
"""

CLIENTS = """
INSERT INTO clients (id, name, key_prefix, key_hash, scopes, tier)
SELECT md5('client' || c)::uuid, 'client ' || c, 'haul_bench' || c, md5('key' || c), '[]',
       'standard'
FROM generate_series(1, 99) AS c
RETURNING id
"""


def generate(database: str, rows: int, big_client: str) -> None:
    """Fill ``jobs`` (and ``artifacts``) with ``rows`` jobs, then VACUUM ANALYZE."""
    options = json.dumps(normalize(None, None).model_dump(mode="json"))
    with psycopg.connect(conninfo(database)) as conn:
        # Consistent by construction: skip the per-row foreign-key triggers.
        conn.execute("SET session_replication_role = replica")
        small = [str(r[0]) for r in conn.execute(CLIENTS).fetchall()]
        conn.execute(
            JOBS,
            {
                "n": rows,
                "active": max(100, rows * 3 // 1000),
                "big": big_client,
                "small": small,
                "options": options,
            },
        )
        conn.execute(ARTIFACTS)
    with psycopg.connect(conninfo(database), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE jobs")
        conn.execute("VACUUM ANALYZE artifacts")
        conn.execute("VACUUM ANALYZE clients")
