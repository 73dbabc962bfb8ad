"""``haul ytdlp update``: install a yt-dlp into this environment, then reload its workers.

The install is ``pip install`` run by the Python that runs ``haul`` (so: into the
environment the workers run from). The reload is Dramatiq's own: SIGHUP to the main
process of a ``dramatiq actors`` run makes it send SIGHUP to its worker processes,
which stop as on SIGTERM (a running download is interrupted and handed back, without
spending an attempt; the rest finish), and then ``exec`` itself again with the same
arguments, so the new processes import the new yt-dlp (``dramatiq/cli.py``: ``main``,
``sighandler``, ``reload_process``). Its pid stays the same, so whatever supervises it
(``just run``, compose) notices nothing.

To find those main processes, every worker process notes its run when it boots
(:func:`note_run`): a file ``HAUL_RUN_DIR/<main pid>.json`` naming the host, the
environment (``sys.prefix``) and the yt-dlp version the process imported. An update
reloads the runs of this host name from this environment whose main process still
lives, and waits until each has noted a boot on the new version.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import structlog

from service.domain.ytdlp import Channel, is_nightly, same_version

if TYPE_CHECKING:
    from service.domain.ytdlp import Target
    from service.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Run:
    """One ``dramatiq actors`` run of this machine, as its worker processes noted it."""

    pid: int
    host: str
    prefix: str
    #: The yt-dlp version its latest worker process imported, and when that one booted.
    ytdlp: str
    booted_at: float


def note_run(settings: Settings, ytdlp: str) -> Run:
    """Note this worker process's run (its Dramatiq main process is its parent), booted now
    on ``ytdlp``."""
    run = Run(os.getppid(), settings.host_name, sys.prefix, ytdlp, time.time())
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path = settings.run_dir / f"{run.pid}.json"
    tmp = path.with_name(f".{run.pid}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(run)))
    os.replace(tmp, path)  # a run's processes note the same; the last to boot stays
    return run


def runs(settings: Settings) -> list[Run]:
    """The live runs of this host name from this environment; notes of ended runs go."""
    found = []
    for path in sorted(settings.run_dir.glob("*.json")) if settings.run_dir.is_dir() else []:
        try:
            run = Run(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if not _is_dramatiq(run.pid):
            path.unlink(missing_ok=True)
        elif run.host == settings.host_name and run.prefix == sys.prefix:
            found.append(run)
    return found


@dataclass(frozen=True)
class Updated:
    """What an update did: the version installed (None: pip failed), and whether all went
    as asked (installed, and every run reloaded on it in time)."""

    version: str | None
    ok: bool


def update(
    settings: Settings, target: Target, out: IO[str], *, reload: bool, wait: float
) -> Updated:
    """Install ``target``, then (with ``reload``) reload this host's runs and wait up to
    ``wait`` seconds for them; pip's output and what happens go to ``out``, for a person."""

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    say(f"installing {target} into {sys.prefix} (installed now: {installed()})")
    version = install(target, out)
    if version is None:
        say("pip could not install it; nothing was reloaded")
        return Updated(None, ok=False)
    if target.channel is Channel.STABLE and is_nightly(version):
        say(
            f"{version} is a nightly newer than the latest release, so pip kept it; name a "
            "release to go back to it: haul ytdlp update --channel VERSION"
        )
    found = runs(settings) if reload else []
    if not found:
        say(
            f"yt-dlp {version} installed; no run of host {settings.host_name} from this "
            "environment was reloaded: workers load it when they start"
        )
        return Updated(version, ok=True)
    asked = time.time()
    signalled = signal_reload(found)
    say(
        f"reloading worker runs {', '.join(str(r.pid) for r in signalled)}: running "
        "downloads are handed back, running probes finish first"
    )
    behind = wait_rebooted(settings, signalled, version, asked, wait)
    if behind:
        late = ", ".join(str(r.pid) for r in behind)
        say(f"runs {late} did not start again on {version} within {wait:.0f} s")
        return Updated(version, ok=False)
    say(f"host {settings.host_name} runs yt-dlp {version}")
    return Updated(version, ok=True)


def install(target: Target, out: IO[str]) -> str | None:
    """``pip install`` the target into this environment (pip's output to ``out``); the
    version installed afterwards, or None when pip failed."""
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    done = subprocess.run([*cmd, *target.pip_arguments()], stdout=out, stderr=out, check=False)
    if done.returncode != 0:
        return None
    return installed()


def installed() -> str | None:
    """The yt-dlp version installed in this environment now."""
    importlib.invalidate_caches()
    try:
        return importlib.metadata.version("yt-dlp")
    except importlib.metadata.PackageNotFoundError:
        return None


def signal_reload(found: list[Run]) -> list[Run]:
    """SIGHUP each run's main process (Dramatiq's graceful reload); the runs signalled."""
    signalled = []
    for run in found:
        try:
            os.kill(run.pid, signal.SIGHUP)
        except ProcessLookupError:
            continue
        log.info("worker run reloading", pid=run.pid, host=run.host)
        signalled.append(run)
    return signalled


def wait_rebooted(
    settings: Settings, signalled: list[Run], version: str, since: float, timeout: float
) -> list[Run]:
    """Until every signalled run has booted again on ``version`` after ``since`` (a reload
    waits for running probes to finish first); the runs that had not when ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while True:
        now = {run.pid: run for run in runs(settings)}
        behind = [
            run
            for run in signalled
            if not (
                (n := now.get(run.pid)) and n.booted_at >= since and same_version(n.ytdlp, version)
            )
        ]
        if not behind or time.monotonic() >= deadline:
            return behind
        time.sleep(0.5)


def _is_dramatiq(pid: int) -> bool:
    """Whether ``pid`` lives and (where /proc tells) is a ``dramatiq`` process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it lives, under another user (an operator may run `haul` as root)
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"dramatiq" in cmdline.read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc here: trust the liveness check
    except OSError:
        return True
