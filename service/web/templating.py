"""Templates and static assets: the Jinja2 environment, its filters, and ``/static``.

Static files are served with a year-long, immutable cache: vendored files carry their
version in their name, and our own carry a hash of their content in the URL
(``asset()``), so a changed file is a new URL and no browser keeps a stale one.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

if TYPE_CHECKING:
    from litestar import Router

HERE = Path(__file__).parent
STATIC = HERE / "static"
YEAR = 365 * 24 * 3600


@cache
def asset(name: str) -> str:
    """The URL of one static file, with a hash of its content."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


def size(value: float | None) -> str:
    """Bytes as people read them (binary units)."""
    if value is None:
        return ""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    amount, unit = float(value), 0
    while amount >= 1024 and unit < len(units) - 1:
        amount, unit = amount / 1024, unit + 1
    return f"{amount:.1f} {units[unit]}" if unit else f"{int(amount)} B"


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    whole = round(value)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def every(value: int) -> str:
    """A schedule's interval in its largest whole unit: "1 h", "90 min", "2 d"."""
    for unit, name in ((86400, "d"), (3600, "h"), (60, "min")):
        if value >= unit and value % unit == 0:
            return f"{value // unit} {name}"
    return f"{value} s"


def when(value: datetime | None) -> str:
    """A timestamp in UTC, to the second."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _engine(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.filters.update(size=size, seconds=seconds, when=when, every=every)
    env.globals.update(asset=asset)
    env.trim_blocks = env.lstrip_blocks = True


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_engine
    )


def static_router() -> Router:
    return create_static_files_router(
        "/static",
        directories=[STATIC],
        cache_control=CacheControlHeader(max_age=YEAR, public=True, immutable=True),
        include_in_schema=False,
    )
