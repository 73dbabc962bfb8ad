"""Event streams against hostile use: a cap on the streams one client holds open, and a
revoked key's streams closing within one heartbeat. The API runs in a real uvicorn
(in a thread of the test) so that many streams stay open at once, as they would.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from service.api.app import create_app
from service.intake.clients import create_client, revoke
from service.runtime import build_runtime
from tests.support.network import free_port
from tests.support.sse import events
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

HEARTBEAT_S = 0.5
MAX_STREAMS = 3


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    tuned = settings.model_copy(
        update={"sse_heartbeat_s": HEARTBEAT_S, "sse_max_streams_per_client": MAX_STREAMS}
    )
    runtime = build_runtime(tuned)
    yield runtime
    runtime.broker.close()
    runtime.db.dispose()


@pytest.fixture
def base_url(rt: Runtime) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(rt.settings, rt), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20, what="uvicorn to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


def _open(stack: ExitStack, base_url: str, key: str) -> httpx.Response:
    """One stream of /v1/events, kept open until ``stack`` closes."""
    http = stack.enter_context(
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    )
    return stack.enter_context(http.stream("GET", "/v1/events"))


def test_a_client_past_its_open_streams_gets_429_with_retry_after(
    rt: Runtime, base_url: str
) -> None:
    _, key = create_client(rt, "greedy")
    _, other_key = create_client(rt, "bystander")
    with ExitStack() as stack:
        # Given a client holding as many streams open as it may
        held = [_open(stack, base_url, key) for _ in range(MAX_STREAMS)]
        assert [r.status_code for r in held] == [200] * MAX_STREAMS

        # When it opens one more
        extra = _open(stack, base_url, key)

        # Then that one is a 429 problem saying which limit, with Retry-After
        assert extra.status_code == 429
        assert extra.headers["content-type"].startswith("application/problem+json")
        assert int(extra.headers["retry-after"]) >= 1
        problem = httpx.Response(429, content=extra.read()).json()
        assert problem["type"] == "/problems/too-many-streams"
        assert problem["limit"] == "sse_max_streams_per_client"
        assert problem["value"] == MAX_STREAMS
        # and another client is not affected
        assert _open(stack, base_url, other_key).status_code == 200

    # When the client's streams are closed, it may open one again
    def reopened() -> bool:
        with ExitStack() as again:
            return _open(again, base_url, key).status_code == 200

    wait_for(reopened, timeout=10, what="a stream to be allowed again after closing")


def test_the_streams_of_a_revoked_key_end_within_one_heartbeat(rt: Runtime, base_url: str) -> None:
    admin, _ = create_client(rt, "operator", admin=True)
    client, key = create_client(rt, "revoked-soon")
    with ExitStack() as stack:
        # Given two open, idle streams of a client (keep-alives arriving)
        streams = [_open(stack, base_url, key) for _ in range(2)]
        assert [r.status_code for r in streams] == [200, 200]
        readers = [events(r) for r in streams]
        for reader in readers:
            assert next(reader).kind is None  # a keep-alive: the stream is live

        # When its key is revoked
        revoke(rt, admin, client.id)
        revoked_at = time.monotonic()

        # Then each stream ends (the server closes it) within about one heartbeat
        for reader in readers:
            for _ in reader:
                pass
        took = time.monotonic() - revoked_at
        assert took < HEARTBEAT_S * 2 + 1.0, took


@pytest.mark.parametrize("after", ["-1", "x", "1.5"])
def test_a_stream_after_an_id_that_is_not_one_is_refused_as_invalid_input(
    rt: Runtime, base_url: str, after: str
) -> None:
    _, key = create_client(rt, "x")
    answer = httpx.get(
        f"{base_url}/v1/events",
        params={"after": after},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == ["after"]
