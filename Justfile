# haul's tasks. On a fresh machine with PostgreSQL and RabbitMQ reachable,
# `just run` starts haul and `just test` runs the tests; both create the venv first.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
bin := venv / "bin"
host := env_var_or_default("HAUL_HOST", "127.0.0.1")
port := env_var_or_default("HAUL_PORT", "8000")
processes := env_var_or_default("HAUL_WORKER_PROCESSES", "2")
threads := env_var_or_default("HAUL_WORKER_THREADS", "4")
# a worker host's Prometheus endpoint (all its processes); 0 turns it off
worker_metrics_port := env_var_or_default("HAUL_WORKER_METRICS_PORT", "9191")

# list the recipes
default:
    @just --list

# create the virtualenv and install haul with its dev tools
setup:
    test -x {{bin}}/python || python3 -m venv {{venv}}
    {{bin}}/pip install --quiet --upgrade pip
    {{bin}}/pip install --quiet -e ".[dev]"
    touch {{venv}}/.installed

# (re)install when pyproject.toml changed since the last install
_venv:
    @if [ ! -f {{venv}}/.installed ] || [ pyproject.toml -nt {{venv}}/.installed ]; then just setup; fi

# migrate, then run the API, the worker fleet and the scheduler together (Ctrl-C stops all)
run: _venv migrate
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'trap - EXIT INT TERM; kill 0 2>/dev/null; wait' EXIT INT TERM
    echo "haul: API on http://{{host}}:{{port}} (OpenAPI at /schema); create a key with: just client NAME"
    echo "haul: worker metrics on port {{worker_metrics_port}} (HAUL_WORKER_METRICS_PORT; 0: off)"
    {{bin}}/uvicorn service.api.app:app --host {{host}} --port {{port}} &
    HAUL_WORKER_METRICS_PORT={{worker_metrics_port}} dramatiq_queue_prefetch={{threads}} {{bin}}/dramatiq actors --processes {{processes}} --threads {{threads}} &
    {{bin}}/periodiq actors &
    wait -n

# the API alone
api: _venv
    {{bin}}/uvicorn service.api.app:app --host {{host}} --port {{port}}

# one worker host: `dramatiq actors` (prefetch = threads, so long downloads strand nothing)
worker: _venv
    HAUL_WORKER_METRICS_PORT={{worker_metrics_port}} dramatiq_queue_prefetch={{threads}} {{bin}}/dramatiq actors --processes {{processes}} --threads {{threads}}

# the periodic sweeps; run exactly one in the whole deployment
scheduler: _venv
    {{bin}}/periodiq actors

# create the database if needed and apply migrations
migrate: _venv
    {{bin}}/haul migrate

# create an API client and print its key (once): just client NAME [--admin]
client name *flags: _venv
    {{bin}}/haul clients create {{name}} {{flags}}

# run the tests (integration and end-to-end tests need PostgreSQL, RabbitMQ and ffmpeg)
test *args: _venv
    {{bin}}/pytest {{args}}

# ruff and mypy
lint: _venv
    {{bin}}/ruff check .
    {{bin}}/ruff format --check .
    {{bin}}/mypy

# benchmarks (not part of the tests)
bench *args: _venv
    {{bin}}/python -m bench {{args}}

# mutation testing of the guarantee code against the fast tiers (docs/testing.md):
# just mutants [MODULE…] | just mutants --scores | just mutants --guards [MODULE…]
mutants *args: _venv
    {{bin}}/python -m tests.mutation.mutants {{args}}

# CI's fast signal: a seeded sample of the guarantee modules' mutants within a time budget
mutants-sample seed="19" count="40" budget="540": _venv
    {{bin}}/python -m tests.mutation.mutants --sample --seed {{seed}} --count {{count}} --budget {{budget}}
