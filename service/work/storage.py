"""Where files live: per-attempt temp dirs, the atomic move into storage, hashing.

A file appears in ``HAUL_STORAGE_DIR/<client>/<job>/`` whole or not at all: it
is moved with ``os.replace`` (copied to a hidden name first when the temp dir is
on another filesystem, hashed by the same read). Its SHA-256 is read once: while
it downloads (:class:`StreamHash`) when the downloaded bytes are the final file,
else from the final file.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import tempfile
import threading
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import io
    from collections.abc import Iterator

_MIME = {
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".opus": "audio/ogg",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".mov": "video/quicktime",
}


@dataclass(frozen=True)
class StoredFile:
    """A file in storage; ``path`` is relative to the storage dir."""

    path: str
    filename: str
    size: int
    sha256: str
    mime: str


@contextmanager
def workdir(temp_root: Path, job_id: uuid.UUID) -> Iterator[Path]:
    """A fresh directory for one attempt, removed with everything in it afterwards."""
    temp_root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{job_id}-", dir=temp_root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


_BLOCK = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


class StreamHash:
    """The SHA-256 of a file, read by a side thread while the downloader still writes it.

    The download thread says what it writes: :meth:`grew` after every block,
    :meth:`finished` once the file is closed under its final name, :meth:`spoil`
    when the bytes may have been written twice (a retry, a restart). The side
    thread reads the new bytes back from the page cache and hashes them on
    another core (``hashlib`` releases the GIL), so the digest is ready when the
    download is, instead of a second full read after it.

    What must stay true: :meth:`digest_of` gives a digest only for the file that
    was followed, grown by appends alone, read to its end after it was closed, and
    untouched since (same inode, size and mtime as at :meth:`finished`: a
    post-processor that rewrote it made another file). Otherwise it gives None and
    the caller hashes the final file. :meth:`close` stops the side thread.
    """

    def __init__(self) -> None:
        self._path: Path | None = None
        self._size = 0
        self._final: tuple[Path, os.stat_result] | None = None
        self._spoiled = False
        self._wake = threading.Event()
        self._digest = hashlib.sha256()
        self._hashed = 0
        self._inode: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def grew(self, path: Path, size: int) -> None:
        """The writer appended to ``path``, which now holds ``size`` bytes."""
        if self._spoiled:
            return
        if self._final is not None or size <= self._size or self._path not in (None, path):
            self.spoil()  # a second file, or the same one written again from the start
            return
        self._size = size
        if self._thread is None:
            try:
                # Opened here, not in the side thread: a rename cannot outrun it.
                followed = path.open("rb", buffering=0)
            except OSError:
                self.spoil()
                return
            self._path = path
            self._thread = threading.Thread(
                target=self._follow, args=(followed,), name="stream-hash", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def finished(self, path: Path) -> None:
        """The writer closed the file, now named ``path``; nothing may write it again."""
        try:
            if self._thread is None or self._final is not None:
                raise OSError("not the one file followed")
            self._final = (path, path.stat())
        except OSError:
            self.spoil()
        self._wake.set()

    def spoil(self) -> None:
        """The bytes read so far may not be the file's: give no digest."""
        self._spoiled = True
        self._wake.set()

    def digest_of(self, path: Path) -> str | None:
        """The SHA-256 of ``path`` if it is the file followed, untouched since; else None."""
        if self._final is None:
            self.spoil()
        self._stop()
        if self._spoiled or self._final is None or self._final[0] != path:
            return None
        try:
            now = path.stat()
        except OSError:
            return None
        then = self._final[1]
        same = (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) == (
            then.st_dev,
            then.st_ino,
            then.st_size,
            then.st_mtime_ns,
        )
        if not same or self._inode != (now.st_dev, now.st_ino) or self._hashed != now.st_size:
            return None
        return self._digest.hexdigest()

    def close(self) -> None:
        """Stop following (a download that failed, or one done with)."""
        self.spoil()
        self._stop()

    def _stop(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _follow(self, f: io.FileIO) -> None:
        """Hash the followed file's bytes as they land, until it is finished and read whole."""
        buffer = bytearray(_BLOCK)
        view = memoryview(buffer)
        with f:
            stat = os.fstat(f.fileno())
            self._inode = (stat.st_dev, stat.st_ino)
            while not self._spoiled:
                self._wake.clear()
                closed = self._final is not None  # read before the read: then EOF is the end
                n = f.readinto(buffer)
                if n:
                    self._digest.update(view[:n])
                    self._hashed += n
                    continue
                if os.fstat(f.fileno()).st_size < self._hashed:
                    self._spoiled = True  # truncated under us
                elif closed:
                    return
                else:
                    self._wake.wait(0.05)


def mime_of(path: Path) -> str:
    return (
        _MIME.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


def job_dir(storage_root: Path, client_id: uuid.UUID, job_id: uuid.UUID) -> Path:
    return storage_root / str(client_id) / str(job_id)


def store(
    storage_root: Path,
    client_id: uuid.UUID,
    job_id: uuid.UUID,
    source: Path,
    *,
    sha256: str | None = None,
) -> StoredFile:
    """Move ``source`` atomically into the job's storage dir, and hash it unless ``sha256``
    (the digest of these very bytes, taken while they were written) is given.

    On one filesystem the move is a rename and the file is read at most once, for
    the hash; across filesystems the copy and the hash share one read.
    """
    target_dir = job_dir(storage_root, client_id, job_id)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    size = source.stat().st_size
    digest = sha256
    try:
        os.replace(source, target)
    except OSError:
        hidden = target_dir / f".{source.name}.incoming"
        if digest is None:
            digest = _copy_hashing(source, hidden)
        else:
            shutil.copyfile(source, hidden)
        os.replace(hidden, target)
    if digest is None:
        digest = sha256_of(target)
    return StoredFile(
        path=str(target.relative_to(storage_root)),
        filename=source.name,
        size=size,
        sha256=digest,
        mime=mime_of(target),
    )


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` and return the SHA-256 of the bytes copied."""
    digest = hashlib.sha256()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_BLOCK):
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


def resolve(storage_root: Path, relative: str) -> Path:
    """The absolute path of a stored file; refuses anything outside the storage dir."""
    root = storage_root.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError("path escapes the storage dir")
    return path


def remove_job_files(storage_root: Path, client_id: uuid.UUID, job_id: uuid.UUID) -> None:
    """Delete a job's files; missing files are fine (idempotent)."""
    shutil.rmtree(job_dir(storage_root, client_id, job_id), ignore_errors=True)


# --- what the orphan sweep walks ---------------------------------------------------------------


def job_dirs(storage_root: Path) -> list[tuple[uuid.UUID, Path]]:
    """Every ``<client>/<job>`` directory in storage, with its job's id; names that are
    not ids are not haul's layout, and are left alone."""
    found = []
    for client in _subdirs(storage_root):
        if _uuid(client.name) is not None:
            found += [(job, path) for path in _subdirs(client) if (job := _uuid(path.name))]
    return found


def work_dirs(temp_root: Path) -> list[tuple[uuid.UUID, Path]]:
    """Every attempt's work dir (``<job>-<random>``, made by :func:`workdir`), with its job's id."""
    return [
        (job, path)
        for path in _subdirs(temp_root)
        if path.name[36:37] == "-" and (job := _uuid(path.name[:36])) is not None
    ]


def files_in(directory: Path) -> list[Path]:
    """The files of a job's storage dir, hidden ``.incoming`` copies included."""
    try:
        return [p for p in directory.iterdir() if p.is_file() and not p.is_symlink()]
    except OSError:
        return []


def age_s(path: Path, now: float) -> float:
    """Seconds since ``path`` last changed, in its bytes (mtime) or its name (ctime).

    The mtime alone is not enough: yt-dlp sets it to the site's Last-Modified, so a file
    moved into storage a moment ago may say it is years old; the rename sets its ctime.
    """
    try:
        stat = path.lstat()
    except OSError:
        return 0.0
    return now - max(stat.st_mtime, stat.st_ctime)


def remove_if_empty(directory: Path) -> None:
    """Remove a job's storage dir once nothing is left in it."""
    with suppress(OSError):
        directory.rmdir()


def _subdirs(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def _uuid(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(name)
    except ValueError:
        return None
