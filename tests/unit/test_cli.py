"""The ``haul`` command: the block ``just run`` ends its start-up with (where haul answers,
a key, a curl line), ``haul queues`` (which queues each kind of worker consumes) and what
``haul ytdlp update`` accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from service.cli import main, welcome
from service.dispatch import Queue
from service.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

API = "http://127.0.0.1:8000"
KEY = "haul_" + "k" * 43


def test_a_first_start_shows_the_new_admin_key_in_a_curl_line_that_works_as_pasted() -> None:
    block = welcome(API, KEY, demo=None, dashboard=False)

    assert f"admin key   {KEY}" in block
    assert f'jobs        curl -s {API}/v1/jobs -H "Authorization: Bearer {KEY}"' in block
    assert "sh infra/just.sh demo" in block
    assert "dashboard" not in block


def test_a_later_start_says_how_to_make_a_key_and_uses_KEY() -> None:
    block = welcome(API, None, demo=None, dashboard=True)

    assert "admin key" not in block
    assert ".venv/bin/haul clients create NAME" in block
    assert '-H "Authorization: Bearer $KEY"' in block
    assert f"dashboard   {API}/" in block


def test_the_demo_shows_the_line_that_submits_its_clip() -> None:
    block = welcome(API, None, demo="http://127.0.0.1:8001", dashboard=False)

    assert (
        f'try it      curl -s -X POST {API}/v1/jobs -H "Authorization: Bearer $KEY" '
        "-H 'Content-Type: application/json' "
        """-d '{"url": "http://127.0.0.1:8001/media/clip.mp4"}'"""
    ) in block
    assert "sh infra/just.sh demo" not in block


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("HAUL_QUEUE_PREFIX", "acme")
    get_settings.cache_clear()
    yield "acme"
    get_settings.cache_clear()


def _queues(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["queues", *args]) == 0
    return capsys.readouterr().out.split()


def test_queues_names_every_queue_after_the_prefix_on_one_line(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an operator asks for every queue
    names = _queues(capsys)

    # Then each of haul's queues is there once, canonical (no .DQ/.XQ), prefixed
    assert names == [f"{prefix}.{q.value}" for q in Queue]


def test_the_download_workers_and_the_deliveries_split_the_queues_between_them(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When we ask for the download workers' queues and the deliveries'
    work = _queues(capsys, "--except", "callbacks")
    deliveries = _queues(capsys, "--only", "callbacks")

    # Then the deliveries take the callbacks queue alone, the workers everything else
    assert deliveries == [f"{prefix}.callbacks"]
    assert f"{prefix}.callbacks" not in work
    assert sorted(work + deliveries) == sorted(f"{prefix}.{q.value}" for q in Queue)


def test_queues_never_prints_an_empty_list(prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given that `dramatiq actors -Q` with no names would consume every queue
    everything = [q.value for q in Queue]

    # When the exclusions leave nothing
    code = main(["queues", "--except", *everything])

    # Then the command fails and prints no queue on stdout
    assert code != 0
    assert capsys.readouterr().out == ""


def test_queues_refuses_a_queue_haul_does_not_have(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["queues", "--only", "callback"])
    assert "no queue 'callback'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("channel", "says"),
    [("latest", "neither a channel"), ("2025.10.22", "older than 2025.11.12")],
)
def test_ytdlp_update_refuses_what_it_cannot_install_before_running_pip(
    channel: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ytdlp", "update", "--channel", channel])

    assert code == 2
    out = capsys.readouterr()
    assert says in out.err and out.out == ""
