"""infra/rabbitmq/definitions.json must declare each queue exactly as Dramatiq does,
and give haul's user no more than it needs (no administrator tag).

RabbitMQ creates the queues from that file at boot; Dramatiq declares them again
when a worker or the API first touches them. If the arguments differ in any way
(priority, dead-letter routing key, message TTL), RabbitMQ answers
406 PRECONDITION_FAILED and the workers crash at start. This test compares the file
with what the installed Dramatiq would declare, so a Dramatiq upgrade or an edit of
the file that breaks the match fails here rather than in production.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker

from service.dispatch import MAX_PRIORITY

REPO = Path(__file__).resolve().parents[2]
DEFINITIONS = REPO / "infra" / "rabbitmq" / "definitions.json"
CONF = REPO / "infra" / "rabbitmq" / "rabbitmq.conf"
COMPOSE = REPO / "compose.yaml"
PREFIX = "haul"
STEPS = ("probe", "download", "sweeps", "callbacks", "subscriptions")


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    return json.loads(DEFINITIONS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def broker() -> RabbitmqBroker:
    # Port 1 refuses connections: if building queue arguments ever connected, it would raise.
    return RabbitmqBroker(url="amqp://127.0.0.1:1", max_priority=MAX_PRIORITY)


def _queues(definitions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {queue["name"]: queue for queue in definitions["queues"]}


def _expected_arguments(broker: RabbitmqBroker, name: str) -> dict[str, Any]:
    if name.endswith(".XQ"):
        return {"x-message-ttl": DEAD_MESSAGE_TTL}
    # The work queue and its .DQ are both declared with the work queue's arguments,
    # so both dead-letter to <work queue>.XQ (not <work queue>.DQ.XQ).
    canonical = name.removesuffix(".DQ")
    arguments: dict[str, Any] = broker._build_queue_arguments(canonical)
    return arguments


def test_every_step_has_its_work_delay_and_dead_letter_queue(
    definitions: dict[str, Any],
) -> None:
    # Given the queues the definitions file creates
    names = set(_queues(definitions))

    # When we list the three queues each step needs
    expected = {f"{PREFIX}.{step}{suffix}" for step in STEPS for suffix in ("", ".DQ", ".XQ")}

    # Then every one of them is there, and nothing else
    assert names == expected


def test_queue_arguments_match_what_dramatiq_declares(
    definitions: dict[str, Any], broker: RabbitmqBroker
) -> None:
    # Given every queue of the definitions file
    queues = _queues(definitions)

    # When we compute what Dramatiq would declare for each name
    mismatches = {
        name: (queue["arguments"], _expected_arguments(broker, name))
        for name, queue in queues.items()
        if queue["arguments"] != _expected_arguments(broker, name)
    }

    # Then the arguments are identical, and no connection was opened to find out
    assert mismatches == {}
    assert broker.connections == set()


def test_queues_are_durable_on_the_default_vhost(definitions: dict[str, Any]) -> None:
    # Given every queue of the definitions file
    queues = definitions["queues"]

    # When we read the properties Dramatiq also declares (durable, not auto-delete)
    properties = {(q["vhost"], q["durable"], q["auto_delete"]) for q in queues}

    # Then they are the same for all and equal to Dramatiq's
    assert properties == {("/", True, False)}


def test_the_haul_user_can_declare_queues_on_the_vhost(definitions: dict[str, Any]) -> None:
    # Given the users and permissions of the definitions file
    users = {user["name"] for user in definitions["users"]}
    permissions = definitions["permissions"]

    # When we look for the haul user's rights on "/"
    rights = [p for p in permissions if p["user"] == "haul" and p["vhost"] == "/"]

    # Then it exists and may configure, write and read everything there
    assert "haul" in users
    assert {"name": "/"} in definitions["vhosts"]
    assert [(p["configure"], p["write"], p["read"]) for p in rights] == [(".*", ".*", ".*")]


def test_the_app_user_is_no_administrator_and_a_separate_admin_has_the_ui(
    definitions: dict[str, Any],
) -> None:
    # Given the users of the definitions file and the broker URL compose gives haul
    users = {user["name"]: user for user in definitions["users"]}
    broker_url = _compose_env()["HAUL_BROKER_URL"]

    # Then haul connects as the user "haul", which has no tags (no management UI or API)
    assert urlsplit(broker_url).username == "haul"
    assert users["haul"]["tags"] in ([], "")
    # and its rights are on the vhost "/" only
    assert {p["vhost"] for p in definitions["permissions"] if p["user"] == "haul"} == {"/"}
    # while another user is the administrator, for the management UI
    admins = [name for name, u in users.items() if "administrator" in u["tags"]]
    assert admins == ["haul_admin"]


def test_a_node_without_definitions_never_makes_the_app_user_an_administrator() -> None:
    # Given rabbitmq.conf's fallback account (used only when no definitions load)
    conf = dict(
        line.split(" = ", 1)
        for line in CONF.read_text(encoding="utf-8").splitlines()
        if " = " in line and not line.startswith("#")
    )

    # Then that account, if it is an administrator, is not the one haul connects as
    assert conf["default_user"] != "haul" or conf.get("default_user_tags.administrator") != "true"


def _compose_env() -> dict[str, str]:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    env: dict[str, str] = compose["x-haul"]["environment"]
    return env
