"""The media the benchmarks download: made with ffmpeg, served over loopback.

The server is the tests' ``MediaServer`` (Range support, plain files under
``/media/<name>``), run in a process of its own so that serving a 1 GiB file
never competes for the bench's own GIL. ``python -m bench.media DIR`` prints the
base URL on its first line and serves until stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from bench.procs import REPO

if TYPE_CHECKING:
    from types import TracebackType

_MP4 = [
    *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
    *("-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", "-f", "mp4"),
]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_clip(path: Path, seconds: int = 2) -> None:
    """A short test video with sound (320x240, like the tests' ``a.mp4``), about 45 KB."""
    video = f"testsrc=size=320x240:rate=15:duration={seconds}"
    audio = f"sine=frequency=440:duration={seconds}"
    _ffmpeg("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, *_MP4, str(path))


def make_copies(clip: Path, directory: Path, names: list[str]) -> None:
    """The same clip under many names: distinct URLs, identical work per file."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(clip, directory / name)


def make_large(path: Path, size: int) -> int:
    """An mp4 of about ``size`` bytes (a lossless 10 s segment looped by stream copy).

    Takes seconds, not minutes, even for 1 GiB; returns the real size.
    """
    segment = path.with_name("segment.mp4")
    seconds = 10 if size > 64 * 1024**2 else 1
    video = f"testsrc2=size=1280x720:rate=30:duration={seconds}"
    audio = f"sine=frequency=440:duration={seconds}"
    _ffmpeg(
        *("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio),
        *("-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"),
        *("-c:a", "aac", "-b:a", "128k", "-f", "mp4", str(segment)),
    )
    _ffmpeg("-stream_loop", "-1", "-i", str(segment), "-c", "copy", "-fs", str(size), str(path))
    segment.unlink()
    return path.stat().st_size


def warm_page_cache(path: Path) -> None:
    """Read a file once so both sides find it in the page cache."""
    with path.open("rb") as f:
        while f.read(8 * 1024 * 1024):
            pass


class MediaProcess:
    """``python -m bench.media DIR`` as a context manager; ``url(name)`` for a file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.base_url = ""
        self._popen: subprocess.Popen[str] | None = None

    def url(self, name: str) -> str:
        return f"{self.base_url}/media/{name}"

    def __enter__(self) -> MediaProcess:
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "bench.media", str(self.directory)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self._popen.stdout is not None
        self.base_url = self._popen.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            raise RuntimeError("the media server did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._popen is not None and self._popen.poll() is None:
            os.killpg(self._popen.pid, signal.SIGTERM)
            self._popen.wait(timeout=10)


def main(directory: str) -> None:
    sys.path.insert(0, str(REPO))
    from tests.support.media_server import MediaServer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with MediaServer(Path(directory)) as server:
        print(server.base_url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main(sys.argv[1])
