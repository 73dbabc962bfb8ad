"""compose.yaml and the Justfile start the same processes the same way.

There is no container engine on the test machines, so these read the files: the
download workers and the webhook deliveries split the queues between them alike
in compose (`worker`, `deliveries`), in `just worker`/`just deliveries` and in
`just run`, with the same processes, threads and prefetch; and haul connects to
PostgreSQL as a role that can change rows only (migrations run as the database's
owner, neither a superuser), which infra/postgres/init-roles.sh creates.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.paths import REPO
from tests.support.stack import BIN

COMPOSE = REPO / "compose.yaml"

#: ``work_queues=$(haul queues --except callbacks)``: a variable and the queues it names.
_QUEUES = re.compile(r"(\w+)=\$\(\S*haul queues ([^)]*)\)")
#: ``dramatiq actors --processes 2 --threads 4 -Q $work_queues``
_ACTORS = re.compile(r"dramatiq actors ((?:--\w+ \S+ )*)-Q \$(\w+)")
_PREFETCH = re.compile(r"dramatiq_queue_prefetch=(\d+)")

#: (the `haul queues` arguments, the `dramatiq actors` options, the prefetch)
Launch = tuple[str, str, str | None]


def _launches(text: str) -> set[Launch]:
    """Every `dramatiq actors -Q $(haul queues …)` a script runs."""
    text = text.replace("\\\n", " ")
    queues = dict(_QUEUES.findall(text))
    found = set()
    for line in text.splitlines():
        for options, variable in _ACTORS.findall(line):
            assert variable in queues, f"-Q ${variable} is not set by `haul queues`: {line}"
            prefetch = _PREFETCH.search(line)
            found.add((queues[variable], options.strip(), prefetch[1] if prefetch else None))
    return found


def _just(recipe: str) -> str:
    """What `just RECIPE` runs, with the Justfile's defaults (no HAUL_* of this shell)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAUL_")}
    return subprocess.run(
        [str(BIN / "just"), "--dry-run", recipe],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stderr


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _compose_launch(compose: dict[str, Any], service: str) -> set[Launch]:
    spec = compose["services"][service]
    command = spec["command"]
    assert command[:2] == ["sh", "-c"], f"{service}: expected a `sh -c` command"
    script = command[2].replace("$$", "$")  # compose's escape for a literal $
    assert script.startswith("set -e;"), f"{service}: a failed `haul queues` must stop it"
    prefetch = str(spec["environment"]["dramatiq_queue_prefetch"])
    return {(q, o, prefetch) for q, o, _ in _launches(script)}


def test_compose_splits_the_queues_between_worker_and_deliveries(
    compose: dict[str, Any],
) -> None:
    # When we read the commands of compose's worker and deliveries services
    worker = _compose_launch(compose, "worker")
    deliveries = _compose_launch(compose, "deliveries")

    # Then the worker consumes everything but callbacks, the deliveries only those,
    # each with a prefetch equal to its threads
    assert worker == {("--except callbacks", "--processes 2 --threads 4", "4")}
    assert deliveries == {("--only callbacks", "--processes 1 --threads 8", "8")}


def test_the_justfile_runs_what_compose_runs(compose: dict[str, Any]) -> None:
    # Given what compose starts
    in_compose = _compose_launch(compose, "worker") | _compose_launch(compose, "deliveries")

    # When we read what `just worker`, `just deliveries` and `just run` start
    recipes = _launches(_just("worker")) | _launches(_just("deliveries"))
    run = _launches(_just("run"))

    # Then all three start the same two kinds of process, alike
    assert recipes == in_compose
    assert run == in_compose


def test_the_deliveries_serve_metrics_apart_from_the_workers(compose: dict[str, Any]) -> None:
    # Given the metrics ports of compose's services and of `just run`
    env = {name: compose["services"][name]["environment"] for name in ("worker", "deliveries")}
    run = _just("run")

    # Then no two processes of one host would bind the same port
    ports = re.findall(r"HAUL_WORKER_METRICS_PORT=(\d+)", run)
    assert len(ports) == 2 and len(set(ports)) == 2, ports
    worker, deliveries = (env[n]["HAUL_WORKER_METRICS_PORT"] for n in ("worker", "deliveries"))
    assert worker != deliveries


def test_no_compose_service_runs_a_worker_on_every_queue(compose: dict[str, Any]) -> None:
    # Given every service's command
    commands = {
        name: " ".join(spec.get("command") or []) for name, spec in compose["services"].items()
    }

    # Then any `dramatiq actors` names its queues
    unsplit = [n for n, c in commands.items() if "dramatiq actors" in c and " -Q " not in c]
    assert unsplit == []


def test_the_secret_key_comes_from_the_environment_to_the_api_and_the_workers_only(
    compose: dict[str, Any],
) -> None:
    # Given each haul service's environment
    env = {
        name: compose["services"][name].get("environment") or compose["x-haul"]["environment"]
        for name in ("migrate", "api", "worker", "deliveries", "scheduler")
    }

    # Then the api and the workers (who open cookies) read it from the shell or .env, never
    # a value written here, and the others do not get it
    given = {name: e["HAUL_SECRET_KEY"] for name, e in env.items() if "HAUL_SECRET_KEY" in e}
    assert given == {"api": "${HAUL_SECRET_KEY:-}", "worker": "${HAUL_SECRET_KEY:-}"}


def test_the_dockerfile_names_both_worker_commands() -> None:
    text = (REPO / "infra" / "Dockerfile").read_text(encoding="utf-8")
    assert "haul queues --except callbacks" in text
    assert "haul queues --only callbacks" in text


# --- who haul connects as ----------------------------------------------------------------------

INIT_ROLES = REPO / "infra" / "postgres" / "init-roles.sh"
#: Every compose service that runs haul, and the database role it must connect as.
ROLES = {
    "migrate": "haul_owner",
    "api": "haul_app",
    "worker": "haul_app",
    "deliveries": "haul_app",
    "scheduler": "haul_app",
}


def _database_user(compose: dict[str, Any], service: str) -> str | None:
    env = compose["services"][service].get("environment") or compose["x-haul"]["environment"]
    return urlsplit(env["HAUL_DATABASE_URL"].replace("+psycopg", "")).username


def _statements(script: str) -> list[str]:
    """The SQL the init script feeds psql, one statement per item, whitespace folded."""
    sql = script.split("<<'SQL'", 1)[1].rsplit("\nSQL", 1)[0]
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [" ".join(s.split()) for s in "\n".join(lines).split(";") if s.strip()]


def test_haul_connects_as_the_app_role_and_migrates_as_the_owner(
    compose: dict[str, Any],
) -> None:
    # When we read which role each haul service connects as
    users = {service: _database_user(compose, service) for service in ROLES}

    # Then only the migration connects as the owner, everything else as haul_app
    assert users == ROLES
    # and no service uses the image's superuser
    superuser = compose["services"]["postgres"]["environment"]["POSTGRES_USER"]
    assert superuser not in users.values()


def test_the_init_script_makes_both_roles_without_administrator_rights(
    compose: dict[str, Any],
) -> None:
    # Given the script compose runs when PostgreSQL initialises its volume
    mounts = compose["services"]["postgres"]["volumes"]
    assert "./infra/postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-haul-roles.sh:ro" in (
        mounts
    )
    statements = _statements(INIT_ROLES.read_text(encoding="utf-8"))

    # When we read the roles it creates
    created = {s.split()[2]: s for s in statements if s.startswith("CREATE ROLE")}

    # Then both are plain login roles: no superuser, no databases or roles of their own
    assert set(created) == {"haul_owner", "haul_app"}
    for statement in created.values():
        for refused in ("NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOBYPASSRLS"):
            assert refused in statement, statement
    # and the owner owns the database and its schema
    assert 'ALTER DATABASE :"db" OWNER TO haul_owner' in statements
    assert "ALTER SCHEMA public OWNER TO haul_owner" in statements


def test_the_app_role_may_change_rows_and_nothing_else() -> None:
    # Given every grant of the init script to haul_app
    statements = _statements(INIT_ROLES.read_text(encoding="utf-8"))
    grants = [s for s in statements if "GRANT" in s and s.endswith("TO haul_app")]

    # Then it connects, uses the schema, and reads and writes rows: no CREATE, no
    # TRUNCATE, no ownership, no role membership
    assert grants == [
        'GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO haul_app',
        "GRANT USAGE ON SCHEMA public TO haul_app",
        "ALTER DEFAULT PRIVILEGES FOR ROLE haul_owner IN SCHEMA public "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO haul_app",
        "ALTER DEFAULT PRIVILEGES FOR ROLE haul_owner IN SCHEMA public "
        "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO haul_app",
        "ALTER DEFAULT PRIVILEGES FOR ROLE haul_owner IN SCHEMA public "
        "GRANT EXECUTE ON FUNCTIONS TO haul_app",
    ]
    # and what PUBLIC had by default on the database and schema is taken back
    assert 'REVOKE ALL ON DATABASE :"db" FROM PUBLIC' in statements
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC" in statements
