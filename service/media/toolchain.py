"""What yt-dlp needs beside itself, found from installed packages and never from ``PATH``.

Since 2025.11, yt-dlp solves YouTube's JavaScript challenges by running the EJS solver
scripts (the ``yt-dlp-ejs`` package) in a JavaScript runtime; without both, most
YouTube downloads fail. haul installs ``yt-dlp[default]`` (EJS, ``pycryptodomex`` for
AES-128 HLS, ``brotli``, ``websockets``, ``mutagen``, ``requests``) and the ``deno``
package, whose wheel carries the Deno binary, and names that binary to yt-dlp
explicitly (``js_runtimes``): a worker sees the runtime it was installed with, whatever
its ``PATH`` holds. Without the package, no runtime is configured at all (an empty
``js_runtimes``), rather than whatever ``deno`` a ``PATH`` lookup would find.

What Deno may do: yt-dlp runs it as ``deno run --no-prompt --no-remote --no-npm
--cached-only … -`` (``DenoJCP._run_js_runtime``) with no ``--allow-*`` flag, so the
solver runs with no network, files, environment or subprocesses, and cannot ask for
them. ``remote_components`` stays empty, so yt-dlp never fetches solver scripts from
GitHub or npm: the ones it runs are those of the installed, hash-checked package.

``report()`` tells what a worker's yt-dlp will find, through yt-dlp's own checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yt_dlp
from yt_dlp.dependencies import Cryptodome
from yt_dlp.dependencies import yt_dlp_ejs as _ejs
from yt_dlp.utils._jsruntime import DenoJsRuntime


@cache
def deno_path() -> str | None:
    """The Deno binary the ``deno`` package installed, or None without it."""
    try:
        import deno
    except ImportError:
        return None
    try:
        return str(deno.find_deno_bin())
    except FileNotFoundError:
        return None


def js_params() -> dict[str, Any]:
    """The yt-dlp parameters that pick the JavaScript runtime and forbid remote scripts."""
    path = deno_path()
    return {
        "js_runtimes": {"deno": {"path": path}} if path else {},
        "remote_components": [],
    }


@dataclass(frozen=True)
class Toolchain:
    """What a worker's yt-dlp has to work with."""

    ytdlp: str
    deno_path: str | None
    deno_version: str | None
    deno_supported: bool
    ejs: str | None
    aes: bool

    @property
    def problems(self) -> list[str]:
        """Each missing piece and what fails without it; empty when all is there."""
        found = []
        if self.deno_path is None:
            found.append("no Deno (the `deno` package): YouTube's JavaScript challenges fail")
        elif self.deno_version is None:
            found.append(f"Deno at {self.deno_path} does not run")
        elif not self.deno_supported:
            found.append(f"Deno {self.deno_version} is older than yt-dlp supports")
        if self.ejs is None:
            found.append("no yt-dlp-ejs (yt-dlp[default]): no challenge solver scripts")
        if not self.aes:
            found.append("no pycryptodomex (yt-dlp[default]): AES-128 HLS streams fail")
        return found


def report() -> Toolchain:
    """Ask yt-dlp's own checks what it will find (runs ``deno --version`` once)."""
    path = deno_path()
    info = DenoJsRuntime(path=path).info if path else None
    return Toolchain(
        ytdlp=yt_dlp.version.__version__,
        deno_path=path,
        deno_version=info.version if info else None,
        deno_supported=bool(info and info.supported),
        ejs=_ejs.version if _ejs else None,
        aes=bool(Cryptodome.AES),
    )
