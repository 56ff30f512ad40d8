from __future__ import annotations

from typing import Literal

import pytest

from shipshape.etags import NOT_A_TAG, EntityTag, parse, weak_match

A = EntityTag('"a"', weak=False)
WEAK_A = EntityTag('"a"', weak=True)
B = EntityTag('"b"', weak=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*", "*"), (" *\t", "*"),
        ('"a"', (A,)), ('W/"a"', (WEAK_A,)), ('""', (EntityTag('""', weak=False),)),
        # Lists, with the blanks around elements and the empty elements RFC 9110 §5.6.1.2 skips.
        ('"b", "a"', (B, A)), ('"b",W/"a"', (B, WEAK_A)), (' \t"a" \t, "b" ', (A, B)),
        ('"a",', (A,)), (', "a", ,"b",', (A, B)),
        # A quoted tag may contain a comma (etagc, RFC 9110 §8.8.3).
        ('"a,b"', (EntityTag('"a,b"', weak=False),)),
        ('"a,b", W/"c"', (EntityTag('"a,b"', weak=False), EntityTag('"c"', weak=True))),
        ('"\x80\xff"', (EntityTag('"\x80\xff"', weak=False),)),  # obs-text, as Latin-1 decodes it
        # Elements that are no entity tag: each one tag that matches nothing.
        ("a", (NOT_A_TAG,)), ("W/a", (NOT_A_TAG,)), ("'a'", (NOT_A_TAG,)),
        ('w/"a"', (NOT_A_TAG,)), ('W/ "a"', (NOT_A_TAG,)), ('"a b"', (NOT_A_TAG,)),
        ('"a" "b"', (NOT_A_TAG,)), ('"a";', (NOT_A_TAG,)), ('"a', (NOT_A_TAG,)),
        ("garbage\x00\x7f", (NOT_A_TAG,)), ("**", (NOT_A_TAG,)),
        ('W/"a", x', (WEAK_A, NOT_A_TAG)), ('"a", *', (A, NOT_A_TAG)),
        ('"a, "b"', (NOT_A_TAG, B)),  # an unclosed quote ends at the comma
        # No element at all: an empty list (RFC 9110 §5.6.1), no tag.
        ("", ()), (" \t", ()), (",,", ()), (", ,", ()),
    ],
)  # fmt: skip
def test_parse(value: str, expected: tuple[EntityTag, ...] | Literal["*"]) -> None:
    assert parse(value) == expected


@pytest.mark.parametrize(
    ("value", "etag", "match"),
    [
        ('"a"', '"a"', True), ('W/"a"', '"a"', True), ('"a"', 'W/"a"', True),
        ('"b", "a"', '"a"', True), ("*", '"a"', True), ('"b"', '"a"', False),
        ('W/"a", x', '"a"', True), ('"a,b"', '"a,b"', True), ('"a,b"', '"a"', False),
        ("a", '"a"', False), ("a", "a", False), ('"a" "b"', '"a"', False),
        ('"01"', '"1"', False), ("", '""', False), ("", "", False),
    ],
)  # fmt: skip
def test_weak_match(value: str, etag: str, match: bool) -> None:
    assert weak_match(parse(value), etag) is match


def test_a_long_value_is_read_in_linear_time() -> None:
    """A header near a server's size limit, with a malformed element that is all blanks
    inside and a tag that never closes: read in one pass, not backtracked into."""
    value = '"a' + "x" * 60_000 + ", W/ " + " " * 60_000 + "b" + ', "c"' * 1000
    tags = parse(value)
    assert isinstance(tags, tuple)
    assert tags[:2] == (NOT_A_TAG, NOT_A_TAG) and tags[2:] == (EntityTag('"c"', weak=False),) * 1000
