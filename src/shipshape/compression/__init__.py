"""Compression: the codings, ``Accept-Encoding`` negotiation, and the ASGI middleware.

* :mod:`~shipshape.compression.codings`: the one table of codings, one-shot
  and streaming encoders;
* :mod:`~shipshape.compression.negotiation`: the one reader of
  ``Accept-Encoding`` and the choice of a coding (RFC 9110 §12.5.3), shared by
  static files and dynamic compression;
* :mod:`~shipshape.compression.middleware`: compresses dynamic responses.
"""

from __future__ import annotations

from shipshape.compression.codings import (
    BUILD_LEVELS,
    CODINGS,
    DYNAMIC_LEVELS,
    PREFERENCE,
    SUFFIXES,
    Coding,
    compress,
    decompress,
)
from shipshape.compression.middleware import MINIMUM_SIZE, CompressionMiddleware
from shipshape.compression.negotiation import IDENTITY, accept_encoding, choose

__all__ = [
    "BUILD_LEVELS",
    "CODINGS",
    "DYNAMIC_LEVELS",
    "IDENTITY",
    "MINIMUM_SIZE",
    "PREFERENCE",
    "SUFFIXES",
    "Coding",
    "CompressionMiddleware",
    "accept_encoding",
    "choose",
    "compress",
    "decompress",
]
