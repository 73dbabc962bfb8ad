"""Where files live: per-attempt temp dirs, the atomic move into storage, hashing.

A file appears in ``HAUL_STORAGE_DIR/<client>/<job>/`` whole or not at all: it
is hashed in the temp dir and moved with ``os.replace`` (copied to a hidden
name first when the temp dir is on another filesystem).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid
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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def mime_of(path: Path) -> str:
    return (
        _MIME.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


def job_dir(storage_root: Path, client_id: uuid.UUID, job_id: uuid.UUID) -> Path:
    return storage_root / str(client_id) / str(job_id)


def store(storage_root: Path, client_id: uuid.UUID, job_id: uuid.UUID, source: Path) -> StoredFile:
    """Hash ``source`` and move it atomically into the job's storage dir."""
    target_dir = job_dir(storage_root, client_id, job_id)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    digest = sha256_of(source)
    size = source.stat().st_size
    try:
        os.replace(source, target)
    except OSError:
        hidden = target_dir / f".{source.name}.incoming"
        shutil.copyfile(source, hidden)
        os.replace(hidden, target)
    return StoredFile(
        path=str(target.relative_to(storage_root)),
        filename=source.name,
        size=size,
        sha256=digest,
        mime=mime_of(target),
    )


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
