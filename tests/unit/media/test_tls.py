"""Every ``YoutubeDL`` of a process shares one TLS context per configuration, configured as
yt-dlp configures its own."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from yt_dlp.networking._helper import make_ssl_context

from service.media.tls import shared_context
from service.media.ydl import new_ydl


def _handlers(ydl: Any) -> list[Any]:
    return list(ydl._request_director.handlers.values())


def _settings(context: ssl.SSLContext) -> tuple[object, ...]:
    return (
        context.verify_mode,
        context.check_hostname,
        context.minimum_version,
        context.options,
        sorted(c["name"] for c in context.get_ciphers()),
        len(context.get_ca_certs()) > 0 or context.cert_store_stats()["x509_ca"] > 0,
    )


def test_two_ydls_share_one_context() -> None:
    # Given two YoutubeDLs built as haul builds them
    with new_ydl({"quiet": True}) as one, new_ydl({"quiet": True}) as two:
        # When each handler makes its TLS context
        contexts = [h._make_sslcontext() for h in _handlers(one) + _handlers(two)]
    # Then it is one object, configured as yt-dlp configures a fresh one
    assert len({id(c) for c in contexts}) == 1
    assert _settings(contexts[0]) == _settings(make_ssl_context())


@pytest.mark.parametrize(
    ("params", "verify", "legacy"),
    [({"nocheckcertificate": True}, False, False), ({"legacyserverconnect": True}, True, True)],
)
def test_another_configuration_gets_its_own(
    params: dict[str, Any], verify: bool, legacy: bool
) -> None:
    # Given a YoutubeDL that does not verify, or allows legacy renegotiation
    with new_ydl({"quiet": True, **params}) as odd, new_ydl({"quiet": True}) as plain:
        theirs = _handlers(odd)[0]._make_sslcontext()
        usual = _handlers(plain)[0]._make_sslcontext()
    # Then its context is not the usual one, and is what yt-dlp would make for it
    assert theirs is not usual
    assert _settings(theirs) == _settings(make_ssl_context(verify=verify, legacy_support=legacy))


def test_a_client_certificate_is_never_shared() -> None:
    # Given a handler with a client certificate of its own (made up here: the file is absent)
    with new_ydl({"quiet": True}) as ydl:
        handler = _handlers(ydl)[0]
        handler._client_cert = {"client_certificate": "/nonexistent/cert.pem"}
        # Then its context is built for it alone: it tries to load the certificate (and
        # fails, the file being absent) instead of being handed the shared context
        with pytest.raises(FileNotFoundError):
            shared_context(handler)
