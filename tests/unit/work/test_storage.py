"""storage.StreamHash: a digest only for the file followed, grown by appends, untouched since."""

from __future__ import annotations

import os
import threading
from contextlib import closing
from typing import TYPE_CHECKING

from service.work import storage

if TYPE_CHECKING:
    from pathlib import Path

BLOCKS = [os.urandom(n) for n in (1, 1024, 300_000, 2 * 1024 * 1024 + 7, 5)]


def write_like_ytdlp(streamed: storage.StreamHash, part: Path, blocks: list[bytes]) -> Path:
    """Append ``blocks`` to ``part`` as yt-dlp does (buffered, a hook after each write),
    then close it, rename it to its final name and say so."""
    size = 0
    with part.open("wb") as f:
        for block in blocks:
            f.write(block)
            size += len(block)
            streamed.grew(part, size)
    final = part.with_suffix("")
    part.rename(final)
    streamed.finished(final)
    return final


def test_a_file_written_once_is_hashed_while_it_is_written(tmp_path: Path) -> None:
    # Given a file written block by block, in another thread as a download would be
    part = tmp_path / "clip.mp4.part"
    with closing(storage.StreamHash()) as streamed:
        done: list[Path] = []
        writer = threading.Thread(
            target=lambda: done.append(write_like_ytdlp(streamed, part, BLOCKS))
        )
        writer.start()
        writer.join()
        # When the digest of the final file is asked for
        digest = streamed.digest_of(done[0])
    # Then it is the file's SHA-256
    assert digest == storage.sha256_of(done[0])


def test_a_retry_gives_no_digest(tmp_path: Path) -> None:
    # Given a download that yt-dlp retried halfway
    with closing(storage.StreamHash()) as streamed:
        final = write_like_ytdlp(streamed, tmp_path / "a.mp4.part", BLOCKS[:2])
        streamed.spoil()
        # Then no digest is given: the caller hashes the file itself
        assert streamed.digest_of(final) is None


def test_a_file_written_again_from_the_start_gives_no_digest(tmp_path: Path) -> None:
    # Given a file restarted from zero (its size goes back) before it was finished
    part = tmp_path / "a.mp4.part"
    with closing(storage.StreamHash()) as streamed:
        part.write_bytes(b"x" * 4096)
        streamed.grew(part, 4096)
        final = write_like_ytdlp(streamed, part, [b"y" * 1024, b"z" * 10])
        assert streamed.digest_of(final) is None


def test_a_second_file_gives_no_digest(tmp_path: Path) -> None:
    # Given two files downloaded in one run (a subtitle, then the video)
    with closing(storage.StreamHash()) as streamed:
        write_like_ytdlp(streamed, tmp_path / "a.vtt.part", BLOCKS[:1])
        final = write_like_ytdlp(streamed, tmp_path / "b.mp4.part", BLOCKS[:2])
        assert streamed.digest_of(final) is None


def test_a_file_a_post_processor_replaced_gives_no_digest(tmp_path: Path) -> None:
    # Given a finished file that ffmpeg then rewrote under the same name (another inode)
    with closing(storage.StreamHash()) as streamed:
        final = write_like_ytdlp(streamed, tmp_path / "a.mp4.part", BLOCKS[:3])
        rewritten = tmp_path / "a.temp.mp4"
        rewritten.write_bytes(final.read_bytes())
        os.replace(rewritten, final)
        assert streamed.digest_of(final) is None


def test_a_file_changed_in_place_after_it_was_finished_gives_no_digest(tmp_path: Path) -> None:
    # Given a finished file that something appended to afterwards
    with closing(storage.StreamHash()) as streamed:
        final = write_like_ytdlp(streamed, tmp_path / "a.mp4.part", BLOCKS[:3])
        with final.open("ab") as f:
            f.write(b"more")
        assert streamed.digest_of(final) is None


def test_another_final_file_gives_no_digest(tmp_path: Path) -> None:
    # Given a download remuxed into another file (another name)
    with closing(storage.StreamHash()) as streamed:
        final = write_like_ytdlp(streamed, tmp_path / "a.webm.part", BLOCKS[:2])
        remuxed = final.with_suffix(".mp4")
        remuxed.write_bytes(final.read_bytes())
        assert streamed.digest_of(remuxed) is None


def test_a_download_that_never_finished_stops_the_side_thread(tmp_path: Path) -> None:
    # Given a file still being written when the download failed
    part = tmp_path / "a.mp4.part"
    part.write_bytes(b"x" * 10)
    streamed = storage.StreamHash()
    streamed.grew(part, 10)
    # When it is closed
    streamed.close()
    # Then the side thread stopped, and no digest is given
    assert not any(t.name == "stream-hash" and t.is_alive() for t in threading.enumerate())
    assert streamed.digest_of(part) is None
