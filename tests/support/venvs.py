"""A second Python environment with a yt-dlp of its own, for a second "worker host".

It is a venv whose only package is yt-dlp (from PyPI, without dependencies); a ``.pth``
file adds this environment's site-packages after its own, so haul, Dramatiq and the
rest come from here while ``import yt_dlp`` finds its own version first, and its
``bin/deno`` is this environment's Deno binary. ``haul ytdlp
update`` run by its Python installs into it, as on a real host.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import deno

from tests.support.skips import unavailable


def purelib(python: Path) -> Path:
    """The site-packages directory of the environment ``python`` runs."""
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(out.strip())


def env_with_ytdlp(path: Path, version: str) -> Path:
    """A venv at ``path`` that runs haul with yt-dlp ``version``; its python."""
    python = path / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, "--no-deps", f"yt-dlp=={version}"], capture_output=True, text=True
    )
    if installed.returncode != 0:
        unavailable(f"could not install yt-dlp {version} from PyPI: {installed.stderr[-500:]}")
    ours = sysconfig.get_path("purelib")
    (purelib(python) / "haul-base.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n", encoding="utf-8"
    )
    # The deno wheel's binary sits in an environment's scripts dir, where its package looks.
    (path / "bin" / "deno").symlink_to(deno.find_deno_bin())
    # `dramatiq` as pip installs it: a reload (SIGHUP) execs this script again. Run as
    # `python -m dramatiq`, Dramatiq would exec a bare "python" and leave the venv.
    script = path / "bin" / "dramatiq"
    script.write_text(
        f"#!{python}\nimport sys\nfrom dramatiq.__main__ import main\nsys.exit(main())\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return python


def ytdlp_version(python: Path) -> str:
    """The yt-dlp version ``python`` imports."""
    return subprocess.run(
        [str(python), "-c", "import yt_dlp.version as v; print(v.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
