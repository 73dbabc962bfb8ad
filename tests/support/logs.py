"""What a module logs during a block, whatever became of structlog's configuration before."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog
from structlog.testing import capture_logs

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, MutableMapping
    from types import ModuleType

    from structlog.typing import Processor


@contextmanager
def captured(
    *modules: ModuleType, processors: Iterable[Processor] = ()
) -> Iterator[list[MutableMapping[str, Any]]]:
    """The log lines written while the block runs (structlog's ``capture_logs``, after
    ``processors``), with the ``log`` of each of ``modules`` made anew for it.

    haul caches a logger on its first use (``cache_logger_on_first_use``): one first used
    before an app in the same process configured logging again keeps handing its lines to
    the old processors, which ``capture_logs`` does not see.
    """
    kept = [(module, module.log) for module in modules]
    try:
        for module in modules:
            module.log = structlog.get_logger(module.__name__)
        with capture_logs(list(processors)) as logs:
            yield logs
    finally:
        for module, log in kept:
            module.log = log
