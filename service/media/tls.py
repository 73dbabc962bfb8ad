"""One TLS context per process and configuration, shared by every ``YoutubeDL`` of it.

yt-dlp builds a new ``SSLContext`` for each request handler of each ``YoutubeDL``,
and building one reads and parses the whole CA bundle (certifi's, ~150 certificates),
even for a plain ``http://`` URL. haul makes a ``YoutubeDL`` per step, so a small file
paid that twice (probe and download) where a loop that keeps one ``YoutubeDL`` pays it
once per thread. A context is safe to share between threads once configured, and
what yt-dlp configures depends only on the key below, so the first one made for a key
serves every later handler with the same key. A client certificate is never shared.

This leans on yt-dlp internals (``make_ssl_context``, a handler's ``_make_sslcontext``),
and ``haul ytdlp update`` can bring a yt-dlp that moved them: then nothing is shared
and each handler builds its own context again, slower but the same.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

try:
    from yt_dlp.networking._helper import make_ssl_context
except ImportError:  # a yt-dlp that moved it: share nothing (see above)
    make_ssl_context = None

_lock = threading.Lock()
_contexts: dict[tuple[bool, bool, bool, str | None], ssl.SSLContext] = {}


def shared_context(handler: Any, legacy_ssl_support: bool | None = None) -> ssl.SSLContext:
    """What ``RequestHandler._make_sslcontext`` returns for ``handler``, made once per key
    (verify, legacy renegotiation, certifi or system certificates, ``SSLKEYLOGFILE``)."""
    legacy = handler.legacy_ssl_support if legacy_ssl_support is None else legacy_ssl_support
    assert make_ssl_context is not None  # share_contexts installs this only when it exists
    if handler._client_cert:  # a certificate of its own: never shared
        return make_ssl_context(  # type: ignore[no-any-return]
            verify=handler.verify,
            legacy_support=legacy,
            use_certifi=not handler.prefer_system_certs,
            **handler._client_cert,
        )
    key = (
        bool(handler.verify),
        bool(legacy),
        bool(handler.prefer_system_certs),
        os.environ.get("SSLKEYLOGFILE") or None,
    )
    with _lock:
        context = _contexts.get(key)
        if context is None:
            context = _contexts[key] = make_ssl_context(
                verify=key[0], legacy_support=key[1], use_certifi=not key[2]
            )
    return context


def share_contexts(director: Any) -> Any:
    """Make every request handler of ``director`` (a ``YoutubeDL``'s) use the shared contexts."""
    if make_ssl_context is None:
        return director
    for handler in director.handlers.values():
        if hasattr(handler, "_make_sslcontext"):
            handler._make_sslcontext = lambda legacy_ssl_support=None, h=handler: shared_context(
                h, legacy_ssl_support
            )
    return director
