"""``haul doctor``'s checks that need no server: a line each, and a fix for each failure."""

from __future__ import annotations

import shutil
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from service.domain.ytdlp import release_date
from service.observe import doctor
from service.settings import Settings


def settings(tmp_path: Path, **values: object) -> Settings:
    base: dict[str, object] = {
        "storage_dir": tmp_path / "files",
        "temp_dir": tmp_path / "tmp",
        "database_url": "postgresql+psycopg://postgres@127.0.0.1:1/haul",
        "broker_url": "amqp://guest:guest@127.0.0.1:1/%2F",
    }
    return Settings(_env_file=None, **(base | values))  # type: ignore[call-arg, arg-type]


def test_a_failure_names_its_fix_and_an_ok_line_does_not() -> None:
    failed = doctor.Finding("ffmpeg", "FAIL", "ffmpeg not on PATH", "sudo apt-get install ffmpeg")
    fine = doctor.Finding("disk", "ok", "80 GiB free", "free some space")

    assert failed.line() == (
        "FAIL  ffmpeg         ffmpeg not on PATH; fix: sudo apt-get install ffmpeg"
    )
    assert fine.line() == "ok    disk           80 GiB free"


def test_without_ffmpeg_the_check_fails_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a PATH where neither ffmpeg nor ffprobe is found
    monkeypatch.setenv("PATH", str(tmp_path))

    finding = doctor.check_ffmpeg()
    refusal = doctor.media_tools_refusal()

    assert finding.status == "FAIL"
    assert "ffmpeg and ffprobe not on PATH" in finding.detail
    assert "apt-get install ffmpeg" in finding.fix
    # The worker refuses with exactly one line
    assert refusal is not None and "\n" not in refusal and "apt-get install ffmpeg" in refusal


def test_with_ffmpeg_the_check_names_both_versions() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg is not installed")

    finding = doctor.check_ffmpeg()

    assert finding.status == "ok"
    assert finding.detail.startswith("ffmpeg ") and ", ffprobe " in finding.detail
    assert doctor.media_tools_refusal() is None


@pytest.mark.parametrize(("age", "status"), [(10, "ok"), (doctor.YT_DLP_STALE_DAYS + 1, "warn")])
def test_an_old_yt_dlp_is_flagged_with_the_upgrade_command(age: int, status: str) -> None:
    import importlib.metadata

    released = release_date(importlib.metadata.version("yt-dlp"))
    assert released is not None

    finding = doctor.check_ytdlp(today=released + timedelta(days=age))

    assert finding.status == status
    assert f"{age} days old" in finding.detail
    assert finding.status == "ok" or "haul ytdlp update" in finding.fix


def test_the_js_runtime_and_the_challenge_scripts_are_reported() -> None:
    # Given this environment, which installs yt-dlp[default] and the deno wheel
    finding = doctor.check_js_runtime()

    assert finding.status == "ok", finding.line()
    assert finding.detail.startswith("Deno 2.") and "yt-dlp-ejs " in finding.detail


def test_a_missing_js_runtime_is_a_warning_that_names_what_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker environment without the deno package
    from service.media import toolchain

    monkeypatch.setattr(toolchain, "deno_path", lambda: None)

    finding = doctor.check_js_runtime()

    assert finding.status == "warn"
    assert "no Deno" in finding.detail and "YouTube" in finding.detail
    assert "pip install" in finding.fix


def test_without_a_secret_key_cookies_are_refused_and_the_doctor_says_so(tmp_path: Path) -> None:
    unset = doctor.check_secret_key(settings(tmp_path))
    kept = doctor.check_secret_key(settings(tmp_path, secret_key="k" * 32))
    rotating = doctor.check_secret_key(
        settings(tmp_path, secret_key="k" * 32, old_secret_keys="o" * 32)
    )

    assert unset.status == "warn"
    assert "refuses cookies" in unset.detail and "dashboard sessions" in unset.detail
    assert "HAUL_SECRET_KEY" in unset.fix and "secrets.token_urlsafe" in unset.fix
    assert (kept.status, kept.detail) == ("ok", "HAUL_SECRET_KEY is set")
    assert rotating.status == "ok" and "1 old key(s)" in rotating.detail
    assert "k" * 32 not in unset.line() + kept.line() + rotating.line()


@pytest.mark.parametrize(
    ("allow", "status", "shown"),
    [
        ("", "ok", "public addresses only"),
        ("127.0.0.1/32:8001", "ok", "public addresses, plus 127.0.0.1/32:8001"),
        ("10.0.0.0/8:80-90, [fd00::/8]:443", "ok", "10.0.0.0/8:80-90, [fd00::/8]:443"),
        ("127.0.0.0/8", "warn", "every port of this machine"),
        ("169.254.0.0/16", "warn", "cloud metadata"),
    ],
)
def test_the_egress_policy_in_force_is_shown_and_loopback_as_a_whole_is_flagged(
    tmp_path: Path, allow: str, status: str, shown: str
) -> None:
    finding = doctor.check_egress(settings(tmp_path, egress_allow=allow))

    assert finding.status == status
    assert shown in finding.detail


def test_storage_and_temp_dirs_are_created_and_written(tmp_path: Path) -> None:
    finding = doctor.check_storage(settings(tmp_path))

    assert finding.status == "ok", finding
    assert (tmp_path / "files").is_dir() and (tmp_path / "tmp").is_dir()
    assert list((tmp_path / "files").iterdir()) == []  # the probe file is gone


def test_a_storage_dir_that_cannot_be_made_fails_with_its_setting(tmp_path: Path) -> None:
    # Given a storage dir below a regular file (not writable even for root)
    (tmp_path / "file").write_text("")

    finding = doctor.check_storage(settings(tmp_path, storage_dir=tmp_path / "file" / "files"))

    assert finding.status == "FAIL"
    assert "HAUL_STORAGE_DIR" in finding.detail and "HAUL_STORAGE_DIR" in finding.fix


def test_temp_on_another_filesystem_fails(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem to put the temp dir on")
    temp = shm / f"haul-doctor-test-{tmp_path.name}"
    try:
        finding = doctor.check_storage(settings(tmp_path, temp_dir=temp))
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    assert finding.status == "FAIL"
    assert "different filesystems" in finding.detail


def test_free_disk_below_the_largest_file_is_a_warning(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free

    roomy = doctor.check_disk(settings(tmp_path, max_file_bytes=1))
    tight = doctor.check_disk(settings(tmp_path, max_file_bytes=free * 2))

    assert roomy.status == ("ok" if free >= doctor.MIN_FREE_BYTES else "FAIL")
    assert "free of" in roomy.detail
    if free >= doctor.MIN_FREE_BYTES:
        assert tight.status == "warn" and "HAUL_MAX_FILE_BYTES" in tight.detail


def test_the_worker_metrics_port_is_off_free_or_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        busy = doctor.check_worker_metrics(settings(tmp_path, worker_metrics_port=port))
    free = doctor.check_worker_metrics(settings(tmp_path, worker_metrics_port=port))
    off = doctor.check_worker_metrics(settings(tmp_path))

    assert busy.status == "FAIL" and "HAUL_WORKER_METRICS_PORT" in busy.fix
    assert free.status == "ok" and "is free" in free.detail
    assert off.status == "ok" and off.detail.startswith("off")


def test_servers_that_do_not_answer_fail_with_where_to_look(tmp_path: Path) -> None:
    # Given nothing listening on port 1
    found = {f.check: f for f in doctor.run(settings(tmp_path), ["database", "broker"])}

    assert found["database"].status == "FAIL"
    assert "127.0.0.1:1/haul does not answer" in found["database"].detail
    assert "HAUL_DATABASE_URL" in found["database"].fix
    assert found["broker"].status == "FAIL"
    assert "127.0.0.1:1 does not answer" in found["broker"].detail
    assert "HAUL_BROKER_URL" in found["broker"].fix


def test_every_check_runs_by_default_in_a_fixed_order(tmp_path: Path) -> None:
    names = [f.check for f in doctor.run(settings(tmp_path))]

    assert names == list(doctor.CHECKS)
