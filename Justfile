# haul's tasks. On a fresh machine with Python 3.11+, PostgreSQL and RabbitMQ reachable,
# `sh infra/just.sh run` installs what haul needs and runs it, and `sh infra/just.sh test`
# runs the tests (infra/just.sh puts `just` into .venv; with `just` on PATH: `just run`).

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
bin := venv / "bin"
just := just_executable()
host := env_var_or_default("HAUL_HOST", "127.0.0.1")
port := env_var_or_default("HAUL_PORT", "8000")
processes := env_var_or_default("HAUL_WORKER_PROCESSES", "2")
threads := env_var_or_default("HAUL_WORKER_THREADS", "4")
# a worker host's Prometheus endpoint (all its processes); 0 turns it off
worker_metrics_port := env_var_or_default("HAUL_WORKER_METRICS_PORT", "9191")
# webhook deliveries run in processes of their own, so a slow receiver never holds a
# download's thread: threads of one `deliveries` process, and its metrics port (0: off)
delivery_threads := env_var_or_default("HAUL_DELIVERY_THREADS", "8")
deliveries_metrics_port := env_var_or_default("HAUL_DELIVERIES_METRICS_PORT", "9192")
# where `just demo` serves its sample clip and feed (on 127.0.0.1)
demo_port := env_var_or_default("HAUL_DEMO_PORT", "8001")

# list the recipes
default:
    @{{just}} --list

# create the virtualenv and install haul with its dev tools
setup:
    test -x {{bin}}/python || python3 -m venv {{venv}}
    {{bin}}/pip install --quiet --disable-pip-version-check --upgrade pip
    {{bin}}/pip install --quiet --disable-pip-version-check -e ".[dev]"
    touch {{venv}}/.installed

# ffmpeg and ffprobe, which every download needs: installed from Debian's package when
# missing and run as root with apt-get, else a refusal in one line, before anything starts
_tools:
    #!/usr/bin/env bash
    set -euo pipefail
    have() { command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; }
    if ! have && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "haul: installing ffmpeg and ffprobe (apt-get install ffmpeg)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    fi
    if ! have; then
        sudo=$([ "$(id -u)" = 0 ] || echo "sudo ")
        echo "haul: ffmpeg and ffprobe not on PATH: every download needs them; install them: ${sudo}apt-get install ffmpeg (macOS: brew install ffmpeg)" >&2
        exit 1
    fi

# (re)install when pyproject.toml changed since the last install
_venv:
    @if [ ! -f {{venv}}/.installed ] || [ pyproject.toml -nt {{venv}}/.installed ]; then {{just}} setup; fi

# migrate, then run the API, the workers, the deliveries and the scheduler together (Ctrl-C stops all)
run: (_stack "run")

# `run`, plus a sample clip and feed on 127.0.0.1:HAUL_DEMO_PORT that only this run may reach
demo: (_stack "demo")

# Every process prints JSON lines; `haul logs` shows them readable (or as JSON when
# HAUL_LOG_JSON=true). Each runs in its own process group (set -m), so Ctrl-C reaches
# only this script, which sends each process one SIGTERM and waits for all.
_stack mode: _tools _venv
    #!/usr/bin/env bash
    set -euo pipefail -m
    started=()
    helpers=()
    stop() {
        trap - EXIT INT TERM
        for pid in "${started[@]}" "${helpers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        wait
    }
    trap stop EXIT
    trap 'stop; exit 0' INT TERM  # asked to stop, and stopped
    start() {  # start ROLE COMMAND...
        local role=$1
        shift
        env HAUL_LOG_JSON=true PYTHONUNBUFFERED=1 "$@" 2>&1 | {{bin}}/haul logs --role "$role" &
        started+=("$(jobs -p %%)")  # the job's leader: the command, not its renderer
    }
    HAUL_LOG_JSON=true {{bin}}/haul migrate 2>&1 | {{bin}}/haul logs --role migrate
    demo=()
    if [ "{{mode}}" = demo ]; then
        start demo {{bin}}/python -m tests.support.media_server --port {{demo_port}} data/demo
        export HAUL_EGRESS_ALLOW="${HAUL_EGRESS_ALLOW:+$HAUL_EGRESS_ALLOW,}127.0.0.1/32:{{demo_port}}"
        demo=(--demo "http://127.0.0.1:{{demo_port}}")
    fi
    start api {{bin}}/uvicorn service.api.app:app --host {{host}} --port {{port}}
    # The download workers consume every queue but callbacks; `deliveries` only those.
    work_queues=$({{bin}}/haul queues --except callbacks)
    delivery_queues=$({{bin}}/haul queues --only callbacks)
    start worker env HAUL_WORKER_METRICS_PORT={{worker_metrics_port}} dramatiq_queue_prefetch={{threads}} \
        {{bin}}/dramatiq actors --processes {{processes}} --threads {{threads}} -Q $work_queues
    start deliveries env HAUL_WORKER_METRICS_PORT={{deliveries_metrics_port}} dramatiq_queue_prefetch={{delivery_threads}} \
        {{bin}}/dramatiq actors --processes 1 --threads {{delivery_threads}} -Q $delivery_queues
    start scheduler {{bin}}/periodiq actors
    {{bin}}/haul banner --api "http://{{host}}:{{port}}" "${demo[@]}" &
    helpers+=("$(jobs -p %%)")
    set +m  # the process groups are made; no job notices on the screen
    wait -n "${started[@]}"

# the API alone
api: _venv
    {{bin}}/uvicorn service.api.app:app --host {{host}} --port {{port}}

# Prefetch = threads, so long downloads strand nothing; run `deliveries` beside it.
# one worker host: `dramatiq actors` on every queue but callbacks
worker: _tools _venv
    work_queues=$({{bin}}/haul queues --except callbacks); HAUL_WORKER_METRICS_PORT={{worker_metrics_port}} dramatiq_queue_prefetch={{threads}} {{bin}}/dramatiq actors --processes {{processes}} --threads {{threads}} -Q $work_queues

# webhook deliveries: `dramatiq actors` on the callbacks queue only, one process
deliveries: _tools _venv
    delivery_queues=$({{bin}}/haul queues --only callbacks); HAUL_WORKER_METRICS_PORT={{deliveries_metrics_port}} dramatiq_queue_prefetch={{delivery_threads}} {{bin}}/dramatiq actors --processes 1 --threads {{delivery_threads}} -Q $delivery_queues

# the periodic sweeps; run exactly one in the whole deployment
scheduler: _venv
    {{bin}}/periodiq actors

# check this machine and the configuration: a line each, with the fix for what fails
doctor *checks: _venv
    HAUL_WORKER_METRICS_PORT={{worker_metrics_port}} {{bin}}/haul doctor {{checks}}

# create the database if needed and apply migrations
migrate: _venv
    {{bin}}/haul migrate

# create an API client and print its key (once): just client NAME [--admin]
client name *flags: _venv
    {{bin}}/haul clients create {{name}} {{flags}}

# run the tests (integration and end-to-end tests need PostgreSQL, RabbitMQ and ffmpeg)
test *args: _venv
    {{bin}}/pytest {{args}}

# run the browser tests and copy the screenshots they take of the main pages into docs/img
# (the tests take them only when HAUL_SCREENSHOT_DIR is set, so a plain test run writes nothing)
screenshots: _venv
    #!/usr/bin/env bash
    set -euo pipefail
    shots=$(mktemp -d)
    HAUL_SCREENSHOT_DIR="$shots" {{bin}}/pytest tests/browser -q
    mkdir -p docs/img
    for name in jobs-running job failed queues subscriptions webhooks; do
        cp "$shots/$name-1280.png" "docs/img/$name.png"
    done
    cp "$shots/jobs-running-360.png" docs/img/jobs-running-phone.png
    echo "screenshots in docs/img (all taken, also at 360 px: $shots)"

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
