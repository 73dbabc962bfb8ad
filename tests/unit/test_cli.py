"""The block ``just run`` ends its start-up with: where haul answers, a key, a curl line."""

from __future__ import annotations

from service.cli import welcome

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
