"""yt-dlp's failures, mapped once to Permanent (never retried) or Transient (retried).

The exceptions are real yt-dlp objects, built the way yt-dlp builds them: a
``DownloadError`` whose ``exc_info`` carries the error that caused it.
"""

from __future__ import annotations

import io

import pytest
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import (
    DownloadError,
    ExtractorError,
    GeoRestrictedError,
    PostProcessingError,
    UnsupportedError,
)

from service.errors import Permanent, Transient
from service.media.errors import classify


def http_error(status: int, body: bytes = b"") -> HTTPError:
    response = Response(
        fp=io.BytesIO(body), url="http://media.test/v.mp4", headers={}, status=status
    )
    return HTTPError(response)


def download_error(cause: BaseException, message: str | None = None) -> DownloadError:
    """What ``YoutubeDL.trouble`` raises: the message, and the cause in ``exc_info``."""
    return DownloadError(message or f"ERROR: {cause}", exc_info=(type(cause), cause, None))


# --- HTTP status codes ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 451])
def test_http_client_errors_are_permanent_with_their_status(status: int) -> None:
    # Given yt-dlp failed on an HTTP error that will not change with time
    exc = download_error(http_error(status))

    # When it is classified
    failure = classify(exc)

    # Then it is not retried, and users can filter on the status
    assert isinstance(failure, Permanent)
    assert failure.error_class == f"http_{status}"


@pytest.mark.parametrize(
    "body",
    [
        b"<h1>Sign in to confirm you're not a bot</h1>",
        b"Our systems have detected unusual traffic from your computer network.",
        b"Too many requests. Please try again later.",
    ],
)
def test_a_403_that_is_a_bot_check_is_rate_limited_not_permanent(body: bytes) -> None:
    # Given a site answered 403 with a page that asks us to prove we are no bot
    failure = classify(download_error(http_error(403, body)))

    # Then it counts as a throttle (retried, and against the site's breaker)
    assert isinstance(failure, Transient)
    assert failure.error_class == "rate_limited"


def test_http_429_is_transient_rate_limited() -> None:
    failure = classify(download_error(http_error(429)))

    assert isinstance(failure, Transient)
    assert failure.error_class == "rate_limited"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_http_server_errors_are_transient(status: int) -> None:
    failure = classify(download_error(http_error(status)))

    assert isinstance(failure, Transient)
    assert failure.error_class == "http_5xx"


def test_http_error_raised_bare_is_classified_too() -> None:
    failure = classify(http_error(404))

    assert isinstance(failure, Permanent)
    assert failure.error_class == "http_404"


def test_http_error_found_through_an_extractor_error_cause() -> None:
    # Given the generic extractor failed to fetch the page (yt-dlp keeps the HTTPError in .cause)
    page = ExtractorError("Unable to download webpage", cause=http_error(410), expected=True)
    exc = download_error(page, "ERROR: [generic] v: Unable to download webpage: HTTP Error 410")

    failure = classify(exc)

    assert isinstance(failure, Permanent)
    assert failure.error_class == "http_410"


def test_the_message_is_kept_without_the_error_prefix() -> None:
    failure = classify(download_error(http_error(404)))

    assert failure.message == "HTTP Error 404: Not Found"


def test_terminal_colours_are_stripped_from_the_message() -> None:
    failure = classify(DownloadError("\x1b[0;31mERROR:\x1b[0m Private video"))

    assert failure.message == "Private video"


# --- yt-dlp exception types ----------------------------------------------------------------


def test_unsupported_url_is_permanent() -> None:
    failure = classify(download_error(UnsupportedError("http://media.test/page")))

    assert isinstance(failure, Permanent)
    assert failure.error_class == "unsupported_url"


def test_geo_restriction_is_permanent() -> None:
    exc = download_error(GeoRestrictedError("The uploader has not made this video available"))

    failure = classify(exc)

    assert isinstance(failure, Permanent)
    assert failure.error_class == "geo_blocked"


def test_postprocessing_failure_is_permanent() -> None:
    failure = classify(download_error(PostProcessingError("ffmpeg exited with code 1")))

    assert isinstance(failure, Permanent)
    assert failure.error_class == "postprocessing"


@pytest.mark.parametrize(
    "cause",
    [
        TransportError("Connection reset by peer"),
        TransportError(cause=ConnectionResetError(104, "Connection reset by peer")),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
    ],
    ids=["transport", "transport-with-cause", "refused", "timeout"],
)
def test_network_failures_are_transient(cause: BaseException) -> None:
    failure = classify(download_error(cause))

    assert isinstance(failure, Transient)
    assert failure.error_class == "network"


# --- messages only -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "error_class"),
    [
        (
            "ERROR: [youtube] abc: Private video. Sign in if you've been granted access",
            "unavailable",
        ),
        ("ERROR: [youtube] abc: Video unavailable", "unavailable"),
        ("ERROR: [youtube] abc: This video has been removed by the uploader", "unavailable"),
        ("ERROR: Join this channel to get access to members-only content", "unavailable"),
        ("ERROR: Not available from your location due to geo restriction", "geo_blocked"),
        ("ERROR: [youtube] abc: Requested format is not available", "format_unavailable"),
        ("ERROR: 'not a url' is not a valid URL", "invalid_url"),
        ("ERROR: Unsupported URL: http://media.test/page", "unsupported_url"),
        ("ERROR: Unable to download webpage: HTTP Error 404: Not Found", "http_404"),
    ],
)
def test_permanent_messages(message: str, error_class: str) -> None:
    failure = classify(DownloadError(message))

    assert isinstance(failure, Permanent)
    assert failure.error_class == error_class


def test_age_gate_is_permanent_not_rate_limited() -> None:
    # Given YouTube's age gate, which no retry gets past without cookies
    message = (
        "ERROR: [youtube] abc: Sign in to confirm your age. "
        "This video may be inappropriate for some users."
    )

    # When it is classified
    failure = classify(DownloadError(message))

    # Then it is not mistaken for the bot check ("Sign in to confirm you're not a bot")
    assert isinstance(failure, Permanent), f"{type(failure).__name__} {failure.error_class}"


@pytest.mark.parametrize(
    ("message", "error_class"),
    [
        ("ERROR: [youtube] abc: Sign in to confirm you're not a bot", "rate_limited"),
        ("ERROR: Unable to download webpage: HTTP Error 429: Too Many Requests", "rate_limited"),
        ("ERROR: [tiktok] 1: Please try again later", "rate_limited"),
        ("ERROR: HTTP Error 503: Service Unavailable", "http_5xx"),
        ("ERROR: Unable to download webpage: HTTP Error 502: Bad Gateway", "http_5xx"),
        ("ERROR: Read timed out.", "timeout"),
        ("ERROR: [Errno -3] Temporary failure in name resolution", "network"),
    ],
)
def test_transient_messages(message: str, error_class: str) -> None:
    failure = classify(DownloadError(message))

    assert isinstance(failure, Transient)
    assert failure.error_class == error_class


def test_unknown_yt_dlp_error_is_transient_extractor() -> None:
    # An error we cannot name may pass (yt-dlp updates, site hiccups); retries are bounded
    failure = classify(DownloadError("ERROR: [generic] abc: something unexpected happened"))

    assert isinstance(failure, Transient)
    assert failure.error_class == "extractor"


def test_unknown_python_error_is_transient_named_by_its_type() -> None:
    failure = classify(KeyError("formats"))

    assert isinstance(failure, Transient)
    assert failure.error_class == "KeyError"


def test_empty_message_falls_back_to_the_type_name() -> None:
    failure = classify(DownloadError(""))

    assert failure.message == "DownloadError"
