"""A page compressed once, with fixed-length slots filled in per response."""

from __future__ import annotations

import random

import pytest

from shipshape.compression import decompress
from shipshape.compression import slots as slots_module
from shipshape.compression.slots import slotted

CODINGS = ("zstd", "br", "gzip", "deflate")
PAGE: list[str | bytes] = [
    b"<!doctype html>\n<html><head><meta charset=utf-8>",
    b'<script nonce="',
    "nonce",
    b'" src="/app/assets/index-abc.js"></script><link rel=stylesheet nonce="',
    "nonce",
    b'">',
    b'<meta name="csrf-token" content="',
    "token",
    b'"></head><body>' + b"<p>Things \xc2\xb7 Shipshape</p>\n" * 40 + b"</body></html>\n",
]
SIZES = {"nonce": 22, "token": 86}
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def filled(parts: list[str | bytes], values: dict[str, bytes]) -> bytes:
    return b"".join(p if isinstance(p, bytes) else values[p] for p in parts)


def random_values(rng: random.Random, sizes: dict[str, int]) -> dict[str, bytes]:
    return {name: bytes(rng.choices(ALPHABET, k=size)) for name, size in sizes.items()}


@pytest.mark.parametrize("coding", CODINGS)
def test_every_response_decompresses_to_its_own_page(coding: str) -> None:
    body = slotted(PAGE, SIZES, [coding])[coding]
    rng = random.Random(7)  # noqa: S311 - test values, reproducible
    for _ in range(300):
        values = random_values(rng, SIZES)
        assert decompress(body.render(values), coding) == filled(PAGE, values)


@pytest.mark.parametrize("coding", CODINGS)
def test_every_response_has_the_same_length(coding: str) -> None:
    body = slotted(PAGE, SIZES, [coding])[coding]
    rng = random.Random(5)  # noqa: S311 - test values, reproducible
    assert {len(body.render(random_values(rng, SIZES))) for _ in range(20)} == {body.size}


@pytest.mark.parametrize("coding", CODINGS)
def test_values_that_repeat_the_page_around_them(coding: str) -> None:
    """A value made of the bytes next to its slot, or of the other slot's, still
    decompresses exactly: nothing in a later block copies from a slot."""
    body = slotted(PAGE, SIZES, [coding])[coding]
    page = filled(PAGE, {"nonce": b"", "token": b""})
    for values in (
        {"nonce": (b'" src="/app/' * 3)[:22], "token": (b'"></head><body><p>Things' * 4)[:86]},
        {"nonce": b"\x00" * 22, "token": b"\xff" * 86},
        {"nonce": page[:22], "token": page[-86:]},
    ):
        assert decompress(body.render(values), coding) == filled(PAGE, values)


@pytest.mark.parametrize(
    "page",
    [
        [b"<p>", "a", "b", b"</p>" * 40],  # two slots side by side: one region
        [b"<p>", "a", b">", "b", b"</p>" * 40],  # a slot within the next one's context bytes
        [b"<p>" * 40, "a", b"x", "b"],  # slots at the very end
        [b"<p>" * 40, "a"],
    ],
)
@pytest.mark.parametrize("coding", CODINGS)
def test_slots_next_to_each_other_and_at_the_end(page: list[str | bytes], coding: str) -> None:
    sizes = {"a": 5, "b": 9}
    sizes = {name: size for name, size in sizes.items() if name in page}
    body = slotted(page, sizes, [coding])[coding]
    rng = random.Random(3)  # noqa: S311 - test values, reproducible
    for _ in range(50):
        values = random_values(rng, sizes)
        assert decompress(body.render(values), coding) == filled(page, values)


def test_a_page_that_starts_with_a_slot_is_left_to_per_response_compression() -> None:
    assert slotted(["a", b"<p>" * 40], {"a": 5}, CODINGS) == {}


def test_a_page_with_no_byte_to_spare_for_placeholders_is_left_out() -> None:
    every_byte = bytes(range(256)) * 4
    assert slotted([every_byte, "a", every_byte], {"a": 4}, CODINGS) == {}


def test_a_page_with_few_spare_bytes_uses_pairs_of_them() -> None:
    almost_every_byte = bytes(b for b in range(256) if b not in (1, 2, 3)) * 2
    page: list[str | bytes] = [almost_every_byte, "a", b"x", "b", almost_every_byte]
    sizes = {"a": 4, "b": 3}
    bodies = slotted(page, sizes, CODINGS)
    assert sorted(bodies) == sorted(CODINGS)
    values = {"a": b"\x01\x02\x01\x02", "b": b"zzz"}
    for coding, body in bodies.items():
        assert decompress(body.render(values), coding) == filled(page, values)


def test_a_value_of_another_length_is_refused() -> None:
    body = slotted(PAGE, SIZES, ["br"])["br"]
    with pytest.raises(ValueError, match="slot 'nonce' takes 22 bytes, not 21"):
        body.render({"nonce": b"x" * 21, "token": b"y" * 86})


def test_a_coding_whose_check_fails_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up check decompresses two fillings; a wrong stored block fails it."""
    header, trailer = slots_module._STORED["zstd"]
    monkeypatch.setitem(slots_module._STORED, "zstd", (lambda size: header(size + 1), trailer))
    assert sorted(slotted(PAGE, SIZES, CODINGS)) == ["br", "deflate", "gzip"]


def test_unknown_codings_are_skipped() -> None:
    assert sorted(slotted(PAGE, SIZES, ["br", "compress", "identity"])) == ["br"]


def test_a_region_too_long_for_a_stored_block_is_left_out() -> None:
    assert slotted([b"<p>" * 40, "a", b"</p>"], {"a": 70_000}, CODINGS) == {}


@pytest.mark.parametrize(
    ("page", "sizes"),
    [
        ([], {}),
        (["a"], {"a": 4}),  # no page bytes at all
        ([b"<p>" * 40, "a"], {"a": 0}),
        ([b"<p>" * 40, "a", b"</p>"], {"a": -1}),
        ([b"x" * (slots_module.MAX_PAGE + 1), "a", b"</p>"], {"a": 4}),
    ],
)
def test_pages_it_does_not_take_are_left_to_per_response_compression(
    page: list[str | bytes], sizes: dict[str, int]
) -> None:
    assert slotted(page, sizes, CODINGS) == {}
