"""What the worker's yt-dlp has to work with on real sites (service/media/toolchain.py):
Deno and the EJS solver scripts, seen through yt-dlp's own checks and run the way
yt-dlp runs them, without network; and pycryptodomex, through a worker downloading an
AES-128 encrypted HLS stream from the local media server.

YouTube itself cannot be reached from here: the challenge is a synthetic player
script with the structure the EJS solver looks for (see ``PLAYER``).
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

import deno
import pytest
import sqlalchemy as sa
import yt_dlp_ejs
from yt_dlp.extractor.youtube.jsc._builtin.ejs import ScriptSource
from yt_dlp.extractor.youtube.jsc._director import initialize_jsc_director
from yt_dlp.extractor.youtube.jsc.provider import (
    JsChallengeProviderError,
    JsChallengeRequest,
    JsChallengeType,
    NChallengeInput,
    SigChallengeInput,
)

from service.db.models import Artifact
from service.intake.clients import create_client
from service.intake.jobs import submit
from service.media.options import base_params
from service.media.toolchain import report
from service.media.ydl import new_ydl
from service.work import storage
from service.work.download import run_download
from service.work.probe import run_probe

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration

#: A player script shaped like YouTube's, as far as the solver cares: one function that
#: builds a URL object and sets ``alr=yes`` on it, whose first other method transforms
#: the ``n`` (reversed) and ``s`` (upper-cased) parameters. ``@CALL@`` runs first.
PLAYER = """
var _yt_player = {};
(function(g) {
var removed_by_the_solver = 0;
var U = function(base) { this.p = new Map(); };
U.prototype.set = function(k, v) { this.p.set(k, v); };
U.prototype.get = function(k) { return this.p.get(k); };
U.prototype.clone = function() { return this; };
U.prototype.sign = function() {
  @CALL@;
  var n = this.p.get("n");
  if (n) this.p.set("n", n.split("").reverse().join(""));
  var s = this.p.get("s");
  if (s) this.p.set("s", encodeURIComponent(decodeURIComponent(s).toUpperCase()));
};
function mk(url, sp, sig) {
  var u = new U(url); u.set("alr", "yes"); if (sig) u.set(sp, sig); return u;
}
g.mk = mk;
})(_yt_player);
"""
PLAYER_URL = "https://www.youtube.com/s/player/0123abcd/player_ias.vflset/en_US/base.js"


@pytest.fixture
def worker_ydl() -> Iterator[Any]:
    """The ``YoutubeDL`` a worker builds for every probe and download."""
    with new_ydl(base_params()) as ydl:
        yield ydl


def deno_solver(ydl: Any, player: str) -> Any:
    """yt-dlp's Deno challenge provider for YouTube, handed ``player`` instead of fetching it."""
    provider = initialize_jsc_director(ydl.get_info_extractor("Youtube")).providers["Deno"]
    provider._get_player = lambda video_id, player_url: player
    return provider


def challenges(n: str, sig: str) -> list[JsChallengeRequest]:
    return [
        JsChallengeRequest(JsChallengeType.N, NChallengeInput(PLAYER_URL, [n]), "vid"),
        JsChallengeRequest(JsChallengeType.SIG, SigChallengeInput(PLAYER_URL, [sig]), "vid"),
    ]


def test_the_workers_yt_dlp_sees_the_packaged_deno_and_ejs_scripts_whatever_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a PATH whose only deno is an impostor
    impostor = tmp_path / "deno"
    impostor.write_text("#!/bin/sh\necho 'deno 9.9.9'\n")
    impostor.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    # When the worker's yt-dlp looks for its runtime and its challenge solver
    with new_ydl(base_params()) as ydl:
        runtime = ydl._js_runtimes["deno"].info
        solver = deno_solver(ydl, PLAYER)
        available = solver.is_available()
        lib, core = solver._lib_script, solver._core_script
    # Then it found the Deno of the `deno` package, supported, and nothing else
    assert runtime.path == deno.find_deno_bin()
    assert runtime.version.startswith("2.")
    assert runtime.supported
    # and the solver scripts of the installed yt-dlp-ejs, which passed yt-dlp's hash check
    assert available
    assert (lib.source, core.source) == (ScriptSource.PYPACKAGE, ScriptSource.PYPACKAGE)
    assert lib.version == core.version == yt_dlp_ejs.version
    # and the report for operators agrees
    assert report().problems == []
    assert report().deno_path == runtime.path


def test_deno_solves_a_challenge_as_yt_dlp_runs_it(worker_ydl: Any) -> None:
    # Given yt-dlp's Deno provider and a player with a known transform
    solver = deno_solver(worker_ydl, PLAYER.replace("@CALL@", "void 0"))
    # When it is asked to solve an n and a signature challenge
    responses = list(solver.bulk_solve(challenges("abc123", "sig-xyz")))
    # Then Deno ran the EJS solver on the player and both come back solved
    assert [r.error for r in responses] == [None, None]
    assert [r.response.output.results for r in responses] == [
        {"abc123": "321cba"},
        {"sig-xyz": "SIG-XYZ"},
    ]


def test_the_challenge_solver_has_no_network(worker_ydl: Any, media: MediaServer) -> None:
    # Given a player whose transform tries to reach a server the worker can reach
    canary = media.url("/canary-from-deno")
    solver = deno_solver(worker_ydl, PLAYER.replace("@CALL@", f"fetch({canary!r})"))
    # When yt-dlp runs it
    with pytest.raises(JsChallengeProviderError) as failed:
        list(solver.bulk_solve(challenges("abc123", "sig-xyz")))
    # Then Deno refused the connection and nothing reached the server
    assert "Requires net access" in str(failed.value)
    assert media.hits("/canary-from-deno") == 0


def test_an_aes_128_encrypted_hls_stream_downloads_and_decodes(
    runtime: Runtime, settings: Settings, media: MediaServer, media_dir: Path
) -> None:
    # Given a job for an HLS stream whose segments are AES-128 encrypted
    segment = media_dir / "hls-aes" / "seg0.ts"
    assert not decodes(segment), "the test stream must really be encrypted"
    client, _ = create_client(runtime, "x")
    job = submit(runtime, client, url=media.url("/hls-aes/index.m3u8"))
    # When a worker probes and downloads it
    run_probe(runtime, job.id)
    run_download(runtime, job.id)
    # Then the job succeeded, with the key fetched and every segment decrypted
    with runtime.db.session() as session:
        query = sa.select(Artifact).where(Artifact.job_id == job.id)
        (artifact,) = session.execute(query).scalars()
    stored = storage.resolve(settings.storage_dir, artifact.path)
    assert media.hits("/hls-aes/key.bin", "GET") >= 1
    assert artifact.mime == "video/mp4"
    assert artifact.duration == pytest.approx(3.0, abs=0.5)
    # and the whole file decodes without an error
    assert decodes(stored)


def decodes(path: Path) -> bool:
    """Whether ffmpeg decodes every frame of ``path`` without a single error."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        timeout=60,
    )
    return done.returncode == 0 and not done.stderr.strip()
