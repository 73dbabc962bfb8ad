"""What a fresh deployment's first start relies on: one first admin key, and a doctor that
tells a migrated database from one that is not."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from service.db import clients as client_rows
from service.intake.clients import authenticate, create_client, create_first_admin, is_admin
from service.observe import doctor
from tests.support.postgres import RUN_ID, admin_execute, db_url

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def test_an_empty_database_gets_one_admin_whose_key_works(runtime: Runtime) -> None:
    made = create_first_admin(runtime)

    assert made is not None
    client, key = made
    assert client.name == "admin" and is_admin(client)
    assert authenticate(runtime, f"Bearer {key}").id == client.id
    # A second start finds a client and makes nothing
    assert create_first_admin(runtime) is None
    with runtime.db.session() as session:
        assert len(client_rows.list_all(session)) == 1


def test_no_first_admin_once_any_client_exists(runtime: Runtime) -> None:
    create_client(runtime, "alice")

    assert create_first_admin(runtime) is None


def test_two_first_starts_at_once_make_one_admin(runtime: Runtime) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        made = list(pool.map(lambda _: create_first_admin(runtime), range(4)))

    assert sum(m is not None for m in made) == 1
    with runtime.db.session() as session:
        assert len(client_rows.list_all(session)) == 1


def test_the_doctor_passes_a_migrated_database(settings: Settings) -> None:
    (finding,) = doctor.run(settings, ["database"])

    assert finding.status == "ok", finding
    assert "schema at the newest revision" in finding.detail


@pytest.fixture
def empty_database(postgres_template: str) -> Iterator[str]:
    name = f"haul_test_{RUN_ID}_empty"
    admin_execute(f'CREATE DATABASE "{name}"')
    yield db_url(name)
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_doctor_sends_an_unmigrated_or_missing_database_to_haul_migrate(
    settings: Settings, empty_database: str
) -> None:
    unmigrated = settings.model_copy(update={"database_url": empty_database})
    missing = settings.model_copy(update={"database_url": empty_database + "_nope"})

    (never,) = doctor.run(unmigrated, ["database"])
    (absent,) = doctor.run(missing, ["database"])

    assert never.status == "FAIL" and "has no schema" in never.detail
    assert never.fix == "haul migrate"
    assert absent.status == "FAIL" and "does not exist" in absent.detail
    assert absent.fix == "haul migrate"
