"""One webhook POST against hostile receivers on loopback: the whole attempt ends at
``HAUL_WEBHOOK_TIMEOUT_S``, however the receiver drags it out (no database needed)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from service.domain.egress import EgressPolicy
from service.webhooks.http import post
from tests.support.network import TEST_EGRESS_ALLOW
from tests.support.receiver import Receiver
from tests.support.tarpit import Tarpit

if TYPE_CHECKING:
    from service.webhooks.http import Answer

pytestmark = pytest.mark.integration

POLICY = EgressPolicy.parse(TEST_EGRESS_ALLOW)
TIMEOUT = 1.5
#: Room for a loaded machine: a cut-off attempt is answered within this after its deadline.
SLACK = 1.5


def _timed_post(url: str) -> tuple[Answer, float]:
    started = time.monotonic()
    answer = post(url, "{}", {"content-type": "application/json"}, policy=POLICY, timeout=TIMEOUT)
    return answer, time.monotonic() - started


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline() -> None:
    # Given a receiver that sends a valid answer one byte every 0.3 s (each read of
    # the sender gets a byte well within any per-read timeout; the whole takes ~30 s)
    with Tarpit(trickle=0.3) as pit:
        # When one attempt is made with a 1.5 s timeout
        answer, took = _timed_post(pit.url())

    # Then it fails as timed out, within the deadline (and not when the answer ends)
    assert not answer.ok
    assert answer.status_code is None
    assert answer.error is not None and answer.error.startswith("timed out")
    assert TIMEOUT <= took < TIMEOUT + SLACK, took


def test_a_receiver_that_never_answers_is_cut_off_at_the_deadline() -> None:
    # Given a receiver that accepts the connection and says nothing
    with Tarpit(trickle=None) as pit:
        # When one attempt is made
        answer, took = _timed_post(pit.url())

    # Then it ends at its deadline, as a failure that will be retried
    assert not answer.ok and not answer.refused
    assert took < TIMEOUT + SLACK, took


def test_a_prompt_receiver_is_unaffected_by_the_deadline() -> None:
    # Given a receiver that answers at once
    with Receiver() as hooks:
        answer, _ = _timed_post(hooks.url("/fine"))

    # Then its 204 is a delivered attempt
    assert answer.ok, answer.error
    assert answer.status_code == 204
