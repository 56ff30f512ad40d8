"""Content codings: one table of zstd, br, gzip and deflate, one-shot and streaming.

:data:`CODINGS` is the only list of codings: negotiation takes the server's
order of preference from it, the middleware its dynamic levels, the asset
build its maximum levels and sibling suffixes, and the settings check its
level ranges. The static build compresses once at the maximum levels (size is
all that matters); the compression middleware streams dynamic responses at
levels tuned for speed. Both go through here so that a coding means the same
bytes everywhere. ``gzip`` output is deterministic (``mtime=0``, no file name).
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import brotli
import zstandard


@dataclass(frozen=True, slots=True)
class Coding:
    """One content coding and how Shipshape uses it."""

    name: str
    #: Suffix of a precompressed sibling file, or ``None`` when none is built.
    suffix: str | None
    #: Level for files compressed once at build time: the maximum.
    build_level: int
    #: Level for bodies made per request: most of the ratio for little CPU.
    dynamic_level: int
    #: Levels the library accepts.
    levels: range


#: Every coding, in the server's order of preference (best ratio first).
#: Brotli 3 for dynamic bodies, not Flask-Compress's 4: half the CPU for 8%
#: more bytes on the example home page (the levels appendix of ``make bench``).
CODINGS = (
    Coding("zstd", ".zst", build_level=19, dynamic_level=3, levels=range(1, 23)),
    Coding("br", ".br", build_level=11, dynamic_level=3, levels=range(0, 12)),
    Coding("gzip", ".gz", build_level=9, dynamic_level=6, levels=range(1, 10)),
    # "deflate" in HTTP is the zlib format (RFC 9110 §8.4.1.2); no sibling files:
    # every client that accepts it accepts gzip, which is built.
    Coding("deflate", None, build_level=9, dynamic_level=6, levels=range(1, 10)),
)
BY_NAME = {coding.name: coding for coding in CODINGS}
#: Coding names, in the server's order of preference.
PREFERENCE = tuple(coding.name for coding in CODINGS)
#: Maximum levels, for files compressed once at build time.
BUILD_LEVELS = {coding.name: coding.build_level for coding in CODINGS}
#: Fast levels for bodies made per request.
DYNAMIC_LEVELS = {coding.name: coding.dynamic_level for coding in CODINGS}
#: File suffix of each precompressed sibling.
SUFFIXES = {coding.name: coding.suffix for coding in CODINGS if coding.suffix is not None}


LEVELS_ACCEPTED = "a mapping of codings to levels: " + ", ".join(
    f"{c.name} {c.levels.start}-{c.levels.stop - 1}" for c in CODINGS
)


def checked_levels(levels: object) -> dict[str, int]:
    """``levels`` merged over :data:`DYNAMIC_LEVELS`; ValueError for an unknown coding or level."""
    if not isinstance(levels, Mapping):
        raise ValueError(LEVELS_ACCEPTED)
    merged = dict(DYNAMIC_LEVELS)
    for name, level in levels.items():
        coding = BY_NAME.get(name)
        if coding is None or type(level) is not int or level not in coding.levels:
            raise ValueError(LEVELS_ACCEPTED)
        merged[name] = level
    return merged


def compress(data: bytes, coding: str, level: int) -> bytes:
    """``data`` encoded with ``coding`` at ``level``, in one shot."""
    if coding == "br":
        return bytes(brotli.compress(data, quality=level))
    if coding == "gzip":
        return gzip.compress(data, compresslevel=level, mtime=0)
    if coding == "zstd":
        if level > MAX_CACHED_ZSTD_LEVEL:  # a build's one-off: no context kept
            return zstandard.ZstdCompressor(level=level).compress(data)
        return _zstd_compressor(level).compress(data)
    if coding == "deflate":
        return zlib.compress(data, level)
    raise ValueError(f"unknown coding {coding!r}")


_local = threading.local()
#: Contexts are kept for the fast levels only; one at 19 holds megabytes.
MAX_CACHED_ZSTD_LEVEL = 9


def _zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    """This thread's compressor for ``level``.

    A zstd context is worth keeping: building one costs more than compressing
    a small page, and a one-shot ``compress`` leaves it ready for the next.
    A context must not be shared between threads, hence one per thread.
    """
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "zstd", None)
    if cache is None:
        cache = _local.zstd = {}
    compressor = cache.get(level)
    if compressor is None:
        compressor = cache[level] = zstandard.ZstdCompressor(level=level)
    return compressor


def decompress(data: bytes, coding: str) -> bytes:
    """The inverse of :func:`compress`, for tests and checks."""
    if coding == "br":
        return bytes(brotli.decompress(data))
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if coding == "deflate":
        return zlib.decompress(data)
    raise ValueError(f"unknown coding {coding!r}")


class StreamEncoder(Protocol):
    """Compresses a body chunk by chunk; ``flush`` makes what was fed decodable."""

    def feed(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    def finish(self) -> bytes: ...


class _Zlib:
    def __init__(self, level: int, wbits: int) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def feed(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._c.flush(zlib.Z_FINISH)


class _Brotli:
    def __init__(self, level: int) -> None:
        self._c = brotli.Compressor(quality=level)

    def feed(self, data: bytes) -> bytes:
        return bytes(self._c.process(data))

    def flush(self) -> bytes:
        return bytes(self._c.flush())

    def finish(self) -> bytes:
        return bytes(self._c.finish())


class _Zstd:
    def __init__(self, level: int, size_hint: int | None = None) -> None:
        # A size hint sizes the window to the body, and the window is what a
        # decoder allocates for a stream of unknown length.
        params = zstandard.ZstdCompressionParameters.from_level(level, source_size=size_hint or 0)
        self._c = zstandard.ZstdCompressor(compression_params=params).compressobj()

    def feed(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._c.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


#: Each coding's streaming encoder, from a level and the body's length when known
#: (only zstd's frame uses it: it declares the window a decoder allocates).
ENCODERS: dict[str, Callable[[int, int | None], StreamEncoder]] = {
    "zstd": _Zstd,
    "br": lambda level, _size: _Brotli(level),
    "gzip": lambda level, _size: _Zlib(level, 16 + zlib.MAX_WBITS),
    "deflate": lambda level, _size: _Zlib(level, zlib.MAX_WBITS),
}


def encoder(coding: str, level: int, size_hint: int | None = None) -> StreamEncoder:
    """A streaming encoder for ``coding``; ``size_hint``, the body's length when known,
    lets zstd declare a window no larger than the body."""
    try:
        return ENCODERS[coding](level, size_hint)
    except KeyError:
        raise ValueError(f"unknown coding {coding!r}") from None
