"""The live view's reading of a notification (service/live/views.py, service/live/hub.py):
a subscription's event reaches the client's stream as a ``subscription`` message
without an id, and never a one-job stream or another client's."""

from __future__ import annotations

import uuid

from service.live.hub import EventHub
from service.live.views import _from_change


def _change(client_id: uuid.UUID) -> dict[str, object]:
    return {
        "kind": "subscription",
        "event": "subscription.entries_found",
        "client_id": str(client_id),
        "subscription_id": "s-1",
        "new": 2,
        "at": "2026-12-01T04:00:00+00:00",
    }


def test_a_subscription_event_is_a_subscription_message_without_an_id() -> None:
    event = _from_change(_change(uuid.uuid4()))

    assert (event.kind, event.id, event.ends_job) == ("subscription", None, False)
    assert event.data == {
        "event": "subscription.entries_found",
        "subscription_id": "s-1",
        "new": 2,
        "at": "2026-12-01T04:00:00+00:00",
    }


def test_only_the_clients_own_all_jobs_streams_receive_it() -> None:
    # Given a client's all-jobs view, its one-job view, and another client's view
    hub = EventHub("postgresql://unused")
    me, other = uuid.uuid4(), uuid.uuid4()
    everything = hub.subscribe(me)
    one_job = hub.subscribe(me, uuid.uuid4())
    theirs = hub.subscribe(other)

    # When a subscription event of the first client is dispatched
    hub.dispatch(_change(me))

    # Then only the all-jobs view has it
    assert (everything.queue.qsize(), one_job.queue.qsize(), theirs.queue.qsize()) == (1, 0, 0)
