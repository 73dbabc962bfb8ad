"""The ``Range`` header of a file download: one byte range, or the whole file."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from service.api.files import RangeNotSatisfiable, parse_range

SIZE = 1000


@pytest.mark.parametrize("header", [None, ""])
def test_no_header_sends_the_whole_file(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=0-0", (0, 0)),
        ("bytes=999-999", (999, 999)),
        ("bytes=100-", (100, 999)),
        ("bytes=0-", (0, 999)),
        ("bytes=-50", (950, 999)),
        ("bytes=-1", (999, 999)),
        (" bytes=0-99 ", (0, 99)),
    ],
)
def test_single_ranges(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, SIZE) == expected


def test_end_beyond_the_file_is_clamped() -> None:
    assert parse_range("bytes=900-5000", SIZE) == (900, 999)


def test_suffix_longer_than_the_file_is_the_whole_file() -> None:
    assert parse_range("bytes=-5000", SIZE) == (0, 999)


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1999", "bytes=5000-6000"])
def test_start_at_or_beyond_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, SIZE)

    assert caught.value.size == SIZE


def test_empty_suffix_is_not_satisfiable_and_says_the_files_size() -> None:
    # The 416 answer carries Content-Range: bytes */SIZE, read from the error
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range("bytes=-0", SIZE)

    assert caught.value.size == SIZE
    assert str(caught.value) == f"the requested range is outside the file ({SIZE} bytes)"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=0-0", (0, 0)), ("bytes=0-", (0, 0)), ("bytes=-1", (0, 0)), ("bytes=-9", (0, 0))],
)
def test_a_one_byte_file_has_its_one_byte_to_give(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, 1) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-99,200-299",
        "bytes=-",
        "bytes=abc-def",
        "bytes=1.5-2",
        "bytes 0-99",
        "items=0-99",
        "bytes=0-99;",
        "Bytes=0-99",
        "bytes = 0-99",
    ],
)
def test_malformed_or_multiple_ranges_send_the_whole_file(header: str) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-" + "9" * 5000, (0, SIZE - 1)),
        ("bytes=-" + "9" * 5000, (0, SIZE - 1)),
        ("bytes=" + "0" * 5000 + "5-9", (5, 9)),
    ],
)
def test_numbers_of_thousands_of_digits_are_clamped_like_any_large_number(
    header: str, expected: tuple[int, int]
) -> None:
    # Python refuses int() of more than 4,300 digits: such a header once answered 500
    assert parse_range(header, SIZE) == expected


def test_a_start_of_thousands_of_digits_is_not_satisfiable() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=" + "9" * 5000 + "-", SIZE)


def test_suffix_range_of_an_empty_file_has_no_negative_end() -> None:
    # RFC 9110 14.1.1: a suffix range is the only satisfiable form for an empty file;
    # there are no bytes to slice, so the whole (empty) file is the answer.
    assert parse_range("bytes=-10", 0) is None


@given(
    size=st.integers(min_value=1, max_value=10**12),
    data=st.data(),
)
def test_satisfiable_ranges_stay_inside_the_file(size: int, data: st.DataObject) -> None:
    # Given any range that overlaps the file: first-last, first-, or a non-empty suffix
    kind = data.draw(st.sampled_from(["closed", "open", "suffix"]))
    if kind == "suffix":
        header = f"bytes=-{data.draw(st.integers(min_value=1, max_value=2 * size))}"
    else:
        first = data.draw(st.integers(min_value=0, max_value=size - 1))
        last = data.draw(st.integers(min_value=first, max_value=2 * size))
        header = f"bytes={first}-{last}" if kind == "closed" else f"bytes={first}-"

    # When it is parsed
    span = parse_range(header, size)

    # Then it is a real slice of the file
    assert span is not None
    start, end = span
    assert 0 <= start <= end < size


@given(
    size=st.integers(min_value=1, max_value=10**6),
    header=st.one_of(
        st.from_regex(r"bytes=[0-9]*-[0-9]*", fullmatch=True),
        st.builds(
            "bytes={}-{}".format,
            st.text("0123456789", max_size=6000),
            st.text("0123456789", max_size=6000),
        ),
    ),
)
def test_any_single_range_is_in_the_file_or_refused(size: int, header: str) -> None:
    assume(header != "bytes=-")
    try:
        span = parse_range(header, size)
    except RangeNotSatisfiable:
        return

    assert span is not None
    start, end = span
    assert 0 <= start <= end < size
