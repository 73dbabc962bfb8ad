"""A fresh copy of the checkout and a machine without some commands, for first-run tests.

A new user's machine has no ``just`` (and maybe no ffmpeg); these tests cannot
uninstall anything, so they run the README's commands with a PATH of their own: a
directory of links to every command this machine has, except those left out.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Where a Debian machine keeps its commands (``/bin`` is a link to ``/usr/bin`` there).
_SYSTEM_BIN = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def copy_checkout(repo: Path, dest: Path) -> Path:
    """The files git knows in ``repo`` (committed or not, ignored ones left out) under ``dest``:
    what a fresh clone holds, without its history, and nothing built."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = repo / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def path_without(directory: Path, *left_out: str) -> str:
    """A PATH with every command of this machine but ``left_out``, and this test's Python 3.

    ``python3`` is the interpreter running the tests (resolved out of its virtualenv), so
    the commands under test build their own environment from a plain Python.
    """
    directory.mkdir(parents=True, exist_ok=True)
    python = Path(os.path.realpath(sys.executable))
    (directory / "python3").symlink_to(python)
    for folder in map(Path, _SYSTEM_BIN):
        if not folder.is_dir():
            continue
        for command in folder.iterdir():
            link = directory / command.name
            if command.name in left_out or link.exists() or link.is_symlink():
                continue
            if command.is_file() and os.access(command, os.X_OK):
                link.symlink_to(command)
    return str(directory)


@dataclass
class Session:
    """A command run as a person runs it in a terminal: its own process group, its output
    kept in a file, Ctrl-C (SIGINT to the group) to stop it."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> Session:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(proc, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, then wait for it to end; a session that ignores it is killed (and fails)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"still running {timeout:.0f} s after Ctrl-C") from None
