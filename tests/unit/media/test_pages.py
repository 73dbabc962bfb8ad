"""Bounded reads (service/media/pages.py): a response read whole stops at the cap, one read
a block at a time does not, and every response ``HaulYDL`` opens is bounded."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest
from yt_dlp.networking.common import Response
from yt_dlp.networking.exceptions import HTTPError

from service.domain.errors import ErrorClass
from service.errors import Permanent
from service.media.errors import classify
from service.media.pages import Capped
from service.media.refusals import PageTooLarge
from service.media.ydl import new_ydl

CAP = 1000


class Endless(io.RawIOBase):
    """A body without end that counts what was taken from it."""

    def __init__(self) -> None:
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = len(buffer)
        buffer[:n] = b"x" * n
        self.taken += n
        return n


def response(body: bytes | io.RawIOBase, status: int = 200) -> Response:
    fp = io.BytesIO(body) if isinstance(body, bytes) else io.BufferedReader(body, 64)
    return Response(fp, "http://site.example/page", {"Content-Type": "text/html"}, status)


@pytest.mark.parametrize("size", [0, 1, CAP - 1, CAP])
def test_a_body_within_the_cap_is_read_whole(size: int) -> None:
    body = bytes(range(256)) * 4
    assert Capped(response(body[:size]), CAP).read() == body[:size]


@pytest.mark.parametrize("amt", [None, -1])
def test_one_byte_past_the_cap_is_refused_and_the_response_closed(amt: int | None) -> None:
    # Given a body one byte longer than the cap
    capped = Capped(response(b"x" * (CAP + 1)), CAP)
    # When it is read whole, Then the read is refused and the connection let go
    with pytest.raises(PageTooLarge) as refused:
        capped.read(amt)
    assert "HAUL_MAX_PAGE_BYTES (1000 bytes)" in str(refused.value)
    assert capped._response.fp.closed


def test_an_endless_body_is_read_no_further_than_the_cap() -> None:
    # Given a body that never ends, under a cap of 3 MiB (several of the reader's steps)
    body = Endless()
    capped = Capped(response(body), 3 << 20)
    # When it is read whole, Then the read stops just past the cap
    with pytest.raises(PageTooLarge):
        capped.read()
    assert (3 << 20) < body.taken <= (3 << 20) + 64


def test_reads_of_a_given_size_are_not_capped() -> None:
    # Given a body ten times the cap (a media file, streamed to disk by yt-dlp)
    capped = Capped(response(b"m" * (10 * CAP)), CAP)
    # When it is read a block at a time, Then every byte comes through
    blocks = iter(lambda: capped.read(300), b"")
    assert sum(len(b) for b in blocks) == 10 * CAP


def test_what_was_peeked_at_counts_toward_a_whole_read() -> None:
    # Given a page whose first 512 bytes were read by size (the generic extractor's peek)
    capped = Capped(response(b"p" * (CAP + 1)), CAP)
    assert len(capped.read(512)) == 512
    # When the rest is read whole, Then the whole response is what passed the cap
    with pytest.raises(PageTooLarge):
        capped.read()


def test_a_refused_page_is_a_permanent_page_too_large() -> None:
    failure = classify(PageTooLarge("a page or manifest was larger than HAUL_MAX_PAGE_BYTES"))
    assert isinstance(failure, Permanent)
    assert failure.error_class is ErrorClass.PAGE_TOO_LARGE


class Director:
    """yt-dlp's request director, answering every request from a list of outcomes."""

    def __init__(self, *outcomes: Response | HTTPError) -> None:
        self.outcomes = itertools.cycle(outcomes)

    def send(self, request: Any) -> Response:
        outcome = next(self.outcomes)
        if isinstance(outcome, HTTPError):
            raise outcome
        return outcome


def test_every_response_haul_ydl_opens_is_capped() -> None:
    # Given a HaulYDL whose network answers with a page past its cap
    ydl = new_ydl({"quiet": True}, max_page_bytes=CAP)
    ydl._request_director = Director(response(b"x" * (CAP + 1)))
    # When anything in yt-dlp opens and reads it whole, Then it is refused
    with pytest.raises(PageTooLarge):
        ydl.urlopen("http://site.example/page").read()


def test_the_body_of_an_http_error_is_capped_too() -> None:
    # Given a site answering 404 with an endless body (an extractor may read it)
    ydl = new_ydl({"quiet": True}, max_page_bytes=CAP)
    ydl._request_director = Director(HTTPError(response(Endless(), 404)))
    # When the error's body is read whole, Then it is refused
    with pytest.raises(HTTPError) as error:
        ydl.urlopen("http://site.example/page")
    with pytest.raises(PageTooLarge):
        error.value.response.read()
