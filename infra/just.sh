#!/bin/sh
# haul's tasks on a machine without `just`: this puts `just` (PyPI rust-just) into
# the project's .venv on first use and runs the Justfile's recipes with it, so the
# Justfile stays the one place the tasks live.
#
#   sh infra/just.sh run      install what haul needs, then run it (API, workers, scheduler)
#   sh infra/just.sh test     run the tests
#   sh infra/just.sh --list   every recipe
set -eu
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/just ]; then
    python=""
    for candidate in python3 python3.14 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            python=$candidate
            break
        fi
    done
    if [ -z "$python" ]; then
        echo "haul: needs Python 3.11 or newer as python3 (found: $(python3 --version 2>&1 || echo none))" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ] && ! "$python" -m venv .venv; then
        echo "haul: could not create .venv; on Debian or Ubuntu: sudo apt-get install python3-venv" >&2
        exit 1
    fi
    echo "haul: installing just into .venv (pip install rust-just)" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check rust-just
fi
exec .venv/bin/just "$@"
