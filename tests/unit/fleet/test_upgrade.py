"""How `haul ytdlp update` finds this host's worker runs and reloads them (fleet/upgrade.py).

A stand-in for a `dramatiq` main process is a sleeping Python whose command line names
dramatiq; the real reload (Dramatiq's SIGHUP) is proven in tests/e2e/test_ytdlp_upgrades.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

import pytest

from service.fleet import upgrade
from service.fleet.upgrade import Run
from service.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, run_dir=tmp_path / "runs", host_name="host-a")  # type: ignore[call-arg]


@pytest.fixture
def fake_main() -> Iterator[subprocess.Popen[bytes]]:
    """A process that lives, and whose command line says dramatiq."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "dramatiq"])
    yield proc
    proc.kill()
    proc.wait()


def _note(settings: Settings, run: Run) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / f"{run.pid}.json").write_text(json.dumps(asdict(run)))


def test_a_worker_process_notes_its_run_under_its_parent(settings: Settings) -> None:
    run = upgrade.note_run(settings, "2026.10.26")

    noted = json.loads((settings.run_dir / f"{run.pid}.json").read_text())
    assert noted["host"] == "host-a" and noted["prefix"] == sys.prefix
    assert noted["ytdlp"] == "2026.10.26"
    assert noted["pid"] == run.pid != 0
    assert [p.name for p in settings.run_dir.iterdir()] == [f"{run.pid}.json"]  # no temp file


def test_only_live_dramatiq_runs_are_found_and_notes_of_ended_ones_go(
    settings: Settings, fake_main: subprocess.Popen[bytes]
) -> None:
    # Given notes of a live run, of a process that ended, and of a live process that is
    # not dramatiq
    ours = Run(fake_main.pid, "host-a", sys.prefix, "2026.10.26", time.time())
    ended = subprocess.Popen([sys.executable, "-c", "pass", "dramatiq"])
    ended.wait()
    _note(settings, ours)
    _note(settings, Run(ended.pid, "host-a", sys.prefix, "2026.10.26", time.time()))
    _note(settings, Run(1, "host-a", sys.prefix, "2026.10.26", time.time()))  # init

    # When this host's runs are looked for
    found = upgrade.runs(settings)

    # Then only the live run is, and the notes of processes that are not runs are gone
    assert found == [ours]
    assert sorted(p.name for p in settings.run_dir.iterdir()) == [f"{fake_main.pid}.json"]


@pytest.mark.parametrize(
    ("host", "prefix"), [("host-b", sys.prefix), ("host-a", "/elsewhere/venv")]
)
def test_runs_of_another_host_name_or_environment_are_not_this_updates(
    settings: Settings, fake_main: subprocess.Popen[bytes], host: str, prefix: str
) -> None:
    # Given a live run noted by another host name, or by another environment on this machine
    _note(settings, Run(fake_main.pid, host, prefix, "2026.10.26", time.time()))

    # Then an update from this environment, for this host, leaves it alone
    assert upgrade.runs(settings) == []
    assert (settings.run_dir / f"{fake_main.pid}.json").exists()


def test_a_reload_sends_sighup_to_each_run(
    settings: Settings, fake_main: subprocess.Popen[bytes]
) -> None:
    run = Run(fake_main.pid, "host-a", sys.prefix, "2026.10.26", time.time())

    signalled = upgrade.signal_reload([run])

    assert signalled == [run]
    assert fake_main.wait(timeout=10) == -signal.SIGHUP


def test_a_reload_waits_for_each_run_to_boot_again_on_the_version(
    settings: Settings, fake_main: subprocess.Popen[bytes]
) -> None:
    asked = time.time()
    before = Run(fake_main.pid, "host-a", sys.prefix, "2026.10.22", asked - 5)
    _note(settings, before)

    # A run that has not booted again since is behind
    assert upgrade.wait_rebooted(settings, [before], "2026.10.26", asked, timeout=0) == [before]

    # Booted again on another version: still behind; on the version: done
    _note(settings, Run(fake_main.pid, "host-a", sys.prefix, "2026.10.22", asked + 1))
    assert upgrade.wait_rebooted(settings, [before], "2026.10.26", asked, timeout=0) == [before]
    _note(settings, Run(fake_main.pid, "host-a", sys.prefix, "2026.10.26", asked + 2))
    assert upgrade.wait_rebooted(settings, [before], "2026.10.26", asked, timeout=0) == []


def test_the_installed_version_is_read_from_the_environment() -> None:
    import importlib.metadata

    assert upgrade.installed() == importlib.metadata.version("yt-dlp")
