"""A body compressed once, whose fixed-length slots are filled in per response.

The single-page index differs between two responses only in its nonce and
its CSRF token, whose lengths never change. Compressing the whole page per
response (brotli 3 on the example's 1.3 KB index) was a third of its CPU,
and the brotli binding releases the GIL while it works, which under load
hands the worker to the server's threads in the middle of a request.
:class:`SlottedBody` compresses the page once, at start-up and at the
build's maximum level, and each response is the compressed pieces joined
around its own slot values, which go out as *stored* blocks: brotli's
uncompressed meta-blocks (RFC 7932 §9.2), zstd's raw blocks (RFC 8878
§3.1.1.2), deflate's stored blocks (RFC 1951 §3.2.4) inside gzip or zlib,
whose checksum is worked out per response.

How the pieces are made, for each coding:

* the page is compressed as one stream, with a flush at each edge of a
  slot's *region* (the slot and the two bytes after it), so that every
  region is its own run of whole blocks, which the response replaces with a
  stored block of the same length;
* while compressing, each slot holds placeholder bytes that occur nowhere
  in the page, so no later block can copy from a slot (it would copy the
  placeholder, not the response's value); positions never move, since a
  value has the slot's length, so every distance and brotli's dictionary
  references stay valid;
* the two bytes after a slot belong to its region because brotli picks the
  entropy code of a literal by the two bytes before it: after a region they
  are page bytes, the same in every response.

What else a later block could depend on (brotli's last distances, zstd's
repeat offsets and entropy tables) is not tied to the placeholder's values,
only to how the replaced blocks were built. So each coding's pieces are
checked once, at start-up, by decompressing two fillings with the coding's
own decoder; a coding whose check fails is left to per-response compression,
which is also what a HEAD, an identity response and a slot value of another
length get.

No library does this: the compressors stream, but none takes a template
with holes; the format work here is a block header per coding.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from shipshape.compression.codings import BUILD_LEVELS, decompress, encoder

#: How many page bytes after a slot join its region (brotli's literal context).
CONTEXT_BYTES = 2
#: The largest page compressed here: compressing is done at the build levels, in
#: every worker at start-up (an index is a few KB).
MAX_PAGE = 256 * 1024
#: The longest region a stored block holds here (deflate's limit; brotli's and zstd's are larger).
MAX_REGION = 65535


@dataclass(frozen=True)
class _Region:
    """Slots, and page bytes between and after them, sent as one stored block."""

    items: tuple[str | bytes, ...]  # a slot's name, or page bytes
    size: int
    header: bytes  # the stored block's header, for a region of this size


@dataclass(frozen=True)
class SlottedBody:
    """One coding's compressed pieces of a page, and how to fill its slots.

    Made by :func:`slotted`; :meth:`render` is the response's body.
    """

    coding: str
    #: Compressed bytes, and regions, in page order.
    pieces: tuple[bytes | _Region, ...]
    #: The page bytes, and slots, in order: for gzip's and deflate's checksums.
    plain: tuple[str | bytes, ...]
    sizes: Mapping[str, int]

    @cached_property
    def size(self) -> int:
        """The compressed body's length, the same for every response (the slots' are fixed)."""
        return len(self.render({name: b"\x00" * size for name, size in self.sizes.items()}))

    @cached_property
    def _template(self) -> tuple[str | bytes, ...]:
        """The pieces as one run of bytes and slot names, neighbouring bytes joined: each
        response walks a list of about ten items, not the pieces and their regions."""
        flat: list[str | bytes] = []
        for piece in self.pieces:
            flat += [piece] if isinstance(piece, bytes) else [piece.header, *piece.items]
        merged: list[str | bytes] = []
        for item in flat:
            last = merged[-1] if merged else None
            if isinstance(item, bytes) and isinstance(last, bytes):
                merged[-1] = last + item
            else:
                merged.append(item)
        return tuple(merged)

    def render(self, values: Mapping[str, bytes]) -> bytes:
        """The compressed body with ``values`` in its slots; each must have the slot's length."""
        for name, size in self.sizes.items():
            if len(values[name]) != size:
                raise ValueError(f"slot {name!r} takes {size} bytes, not {len(values[name])}")
        out = [item if isinstance(item, bytes) else values[item] for item in self._template]
        if self.coding in ("gzip", "deflate"):
            out.append(self._trailer(values))
        return b"".join(out)

    def _trailer(self, values: Mapping[str, bytes]) -> bytes:
        parts = [item if isinstance(item, bytes) else values[item] for item in self.plain]
        if self.coding == "gzip":
            crc, size = 0, 0
            for part in parts:
                crc = zlib.crc32(part, crc)
                size += len(part)
            return crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")
        adler = 1
        for part in parts:
            adler = zlib.adler32(part, adler)
        return adler.to_bytes(4, "big")


def slotted(
    parts: Sequence[str | bytes], sizes: Mapping[str, int], codings: Sequence[str]
) -> dict[str, SlottedBody]:
    """Each coding's :class:`SlottedBody` for a page, for those whose check passed.

    Arguments:
        parts: the page in order: ``bytes`` of the page, or the name of a slot.
        sizes: each slot's length in bytes.
        codings: the codings wanted (``zstd``, ``br``, ``gzip``, ``deflate``).
    """
    page = b"".join(p for p in parts if isinstance(p, bytes))
    if not page or len(page) > MAX_PAGE or any(size <= 0 for size in sizes.values()):
        return {}
    placeholders = _placeholders(page, sizes)
    if placeholders is None:
        return {}
    plain = tuple(_merge(parts))
    groups = _group(plain)
    if any(not isinstance(g, bytes) and _size(g, sizes) > MAX_REGION for g in groups):
        return {}
    bodies: dict[str, SlottedBody] = {}
    for coding in codings:
        if coding not in _STORED:
            continue
        pieces = _pieces(coding, groups, sizes, placeholders)
        body = SlottedBody(coding, pieces, plain, dict(sizes))
        if _checks(body, plain, sizes):
            bodies[coding] = body
    return bodies


def _merge(parts: Sequence[str | bytes]) -> list[str | bytes]:
    """Adjacent page bytes joined, empty ones dropped."""
    merged: list[str | bytes] = []
    for part in parts:
        if isinstance(part, bytes):
            if not part:
                continue
            if merged and type(merged[-1]) is bytes:
                merged[-1] += part
                continue
        merged.append(part)
    return merged


def _group(plain: Sequence[str | bytes]) -> list[bytes | tuple[str | bytes, ...]]:
    """Page bytes, and regions: a slot, with the page bytes after it up to
    :data:`CONTEXT_BYTES` (and the next slot, when it comes first)."""
    groups: list[bytes | tuple[str | bytes, ...]] = []
    region: list[str | bytes] | None = None
    owed = 0  # page bytes the open region still takes
    for part in plain:
        if not isinstance(part, bytes):
            if region is None:
                region = []
            region.append(part)
            owed = CONTEXT_BYTES
            continue
        if region is not None:
            region.append(part[:owed])
            part, owed = part[owed:], owed - len(part[:owed])
            if owed:
                continue
            groups.append(tuple(region))
            region = None
        if part:
            groups.append(part)
    if region is not None:
        groups.append(tuple(region))
    return groups


def _size(region: Sequence[str | bytes], sizes: Mapping[str, int]) -> int:
    return sum(len(i) if isinstance(i, bytes) else sizes[i] for i in region)


def _placeholders(page: bytes, sizes: Mapping[str, int]) -> dict[str, bytes] | None:
    """Bytes for each slot that occur nowhere in the page, in which no pair of
    neighbours repeats (so the compressor finds nothing to copy between them)."""
    spare = [b for b in range(1, 256) if b not in page and chr(b) not in "\t\n\r "]
    need = sum(sizes.values())
    # Each spare byte once if there are enough; else a de Bruijn sequence of
    # them, in which every pair occurs once.
    sequence = spare if need <= len(spare) else [spare[i] for i in _de_bruijn_pairs(len(spare))]
    if need > len(sequence):
        return None
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = bytes(sequence[start : start + size])
        start += size
    return out


def _de_bruijn_pairs(k: int) -> list[int]:
    """A sequence over ``range(k)`` in which each of the ``k * k`` pairs occurs once."""
    if k == 0:
        return []
    out: list[int] = []
    for first in range(k):  # the Lyndon words of length 1 and 2, in order
        out.append(first)
        for second in range(first + 1, k):
            out += [first, second]
    return out + out[:1]


def _fill(region: Sequence[str | bytes], values: Mapping[str, bytes]) -> bytes:
    return b"".join(i if isinstance(i, bytes) else values[i] for i in region)


def _stored_brotli(size: int) -> bytes:
    # An uncompressed meta-block (RFC 7932 §9.2): ISLAST 0, MNIBBLES 4, MLEN - 1,
    # ISUNCOMPRESSED 1, then zero bits up to the byte.
    return ((size - 1) << 3 | 1 << 19).to_bytes(3, "little")


def _stored_zstd(size: int) -> bytes:
    # A raw block (RFC 8878 §3.1.1.2): Last_Block 0, Block_Type 0, Block_Size.
    return (size << 3).to_bytes(3, "little")


def _stored_deflate(size: int) -> bytes:
    # A stored block (RFC 1951 §3.2.4): BFINAL 0, BTYPE 00, zero bits up to the
    # byte (a sync flush ends on one), LEN, NLEN.
    return b"\x00" + size.to_bytes(2, "little") + (size ^ 0xFFFF).to_bytes(2, "little")


#: Each coding's stored block header, and the length of the checksum trailer
#: that is worked out per response instead of taken from the compressor.
_STORED: dict[str, tuple[Callable[[int], bytes], int]] = {
    "br": (_stored_brotli, 0),
    "zstd": (_stored_zstd, 0),
    "gzip": (_stored_deflate, 8),  # CRC-32 and length
    "deflate": (_stored_deflate, 4),  # Adler-32
}


def _pieces(
    coding: str,
    groups: Sequence[bytes | tuple[str | bytes, ...]],
    sizes: Mapping[str, int],
    placeholders: Mapping[str, bytes],
) -> tuple[bytes | _Region, ...]:
    """The stream's pieces: page bytes compressed and flushed; each region compressed
    (with placeholders, for the compressor's history) and flushed, then replaced
    with a stored block."""
    stored, trailer = _STORED[coding]
    if not isinstance(groups[0], bytes):  # the stream's header must come before a stored block
        return ()
    total = sum(len(g) if isinstance(g, bytes) else _size(g, sizes) for g in groups)
    stream = encoder(coding, BUILD_LEVELS[coding], size_hint=total)
    pieces: list[bytes | _Region] = []
    for group in groups:
        if isinstance(group, bytes):
            pieces.append(stream.feed(group) + stream.flush())
            continue
        size = _size(group, sizes)
        stream.feed(_fill(group, placeholders))
        stream.flush()
        pieces.append(_Region(tuple(group), size, stored(size)))
    end = stream.finish()
    pieces.append(end[: len(end) - trailer])
    return tuple(pieces)


def _checks(body: SlottedBody, plain: Sequence[str | bytes], sizes: Mapping[str, int]) -> bool:
    """Whether two different fillings decompress, with the coding's own decoder, to the page."""
    if not body.pieces:
        return False
    for fill in (b"A", b"z"):
        values = {name: (fill * size) for name, size in sizes.items()}
        expected = b"".join(p if isinstance(p, bytes) else values[p] for p in plain)
        try:
            if decompress(body.render(values), body.coding) != expected:
                return False
        except Exception:  # a stream the decoder refuses
            return False
    return True
