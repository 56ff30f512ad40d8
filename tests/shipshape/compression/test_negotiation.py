from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipshape.compression import PREFERENCE
from shipshape.compression.negotiation import choose, parse

ALL = PREFERENCE


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "identity"),
        ("", "identity"),
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("br;q=0.5, gzip;q=0.5", "br"),  # tie: server preference
        ("gzip;q=0.5", "gzip"),  # an accepted coding beats implicit identity
        ("br;q=0, gzip", "gzip"),
        ("zstd;q=0, br;q=0, gzip;q=0, deflate;q=0", "identity"),
        ("*", "zstd"),
        ("*;q=0.5, br", "br"),
        ("*;q=0", None),  # everything forbidden, identity too: 406
        ("*;q=0, identity", "identity"),
        ("identity;q=0", None),
        ("identity;q=0, gzip", "gzip"),
        ("identity", "identity"),
        ("identity;q=1, br;q=0.9", "identity"),
        ("br;q=abc", "identity"),  # malformed q: the entry is ignored
        ("gzip;q=2", "identity"),
        ("gzip;q=1.0001", "identity"),
        ("gzip;q=0.001", "gzip"),
        ("br, br;q=0", "br"),  # duplicates keep the first
        ("BR", "br"),
        ("br ; q=0.9", "br"),
        ("x-gzip", "identity"),
        ("gzip;level=9", "identity"),
        ("compress, sdch", "identity"),
        (",,,;;;", "identity"),
        ("gzip" + ", a" * 5000, "gzip"),  # 10 KB header is cut, not choked on
    ],
)
def test_choose(header: str | None, expected: str | None) -> None:
    assert choose(header, ALL) == expected


def test_available_limits_the_choice() -> None:
    assert choose("zstd, br, gzip", ("gzip",)) == "gzip"
    assert choose("zstd", ("br", "gzip")) == "identity"
    assert choose("zstd, identity;q=0", ("br",)) is None


def test_parse() -> None:
    assert parse("br;q=0.5, GZIP, *;q=0") == {"br": 0.5, "gzip": 1.0, "*": 0.0}
    # Regression (hostile-input probe): a tab is whitespace there too (RFC 9110 §5.6.3).
    assert parse("gzip\t;\tq=1,\tbr ;q=0.5") == {"gzip": 1.0, "br": 0.5}


@given(st.text(max_size=300))
def test_any_header_gets_an_answer(header: str) -> None:
    result = choose(header, ALL)
    assert result is None or result in (*ALL, "identity")
