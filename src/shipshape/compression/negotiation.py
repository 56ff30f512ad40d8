"""Content-coding negotiation from ``Accept-Encoding`` (RFC 9110 §12.5.3).

Shared by the static-files and compression middleware, so both answer the
same header the same way. :func:`accept_encoding` is the one reader of the
header: repeated header lines are joined as RFC 9110 §5.3 says, each decoded
on its own. The rules:

* each coding has a q-value from 0 to 1 (three decimals at most); ``q=0``
  forbids it;
* ``*`` gives its q-value to every coding not named;
* ``identity`` is acceptable unless it is forbidden, directly or by
  ``*;q=0``, but only as a last resort when not named;
* a malformed entry (``br;q=abc``, ``gzip;q=2``) is ignored rather than
  trusted, and a header of absurd length is cut, never a 500;
* ties go to the server's order of preference (smallest output first).

::

    choose("gzip, br;q=0.9", ("zstd", "br", "gzip"))  # -> "gzip"
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from shipshape.compression.codings import PREFERENCE
from shipshape.scope import header
from shipshape.typing import Scope

IDENTITY = "identity"
IMPLICIT_IDENTITY = 0.0001  # below the smallest q a client can send (0.001)
MAX_HEADER = 1024  # characters: real browsers send under 100
_Q_RE = re.compile(r"^q=(0(\.\d{0,3})?|1(\.0{0,3})?)$")


def accept_encoding(scope: Scope) -> str | None:
    """The request's ``Accept-Encoding``, its lines joined; ``None`` when absent.

    Two lines ``identity;q=0`` and ``br`` read as ``identity;q=0, br``.
    """
    return header(scope, b"accept-encoding")


def parse(header: str) -> dict[str, float]:
    """``{"br": 1.0, "gzip": 0.5, "*": 0.1}`` from a header; bad entries dropped."""
    weights: dict[str, float] = {}
    for entry in header[:MAX_HEADER].lower().split(","):
        coding, _, params = entry.strip().partition(";")
        coding = coding.strip()
        if not coding or not re.fullmatch(r"[a-z0-9!#$%&'*+.^_`|~-]+", coding):
            continue
        q = 1.0
        params = params.replace(" ", "").replace("\t", "")  # OWS is spaces and tabs
        if params:
            match = _Q_RE.match(params)
            if match is None:
                continue  # malformed: ignore the entry, do not guess
            q = float(params[2:])
        # A repeated coding keeps its first q-value, as most servers do.
        weights.setdefault(coding, q)
    return weights


def _weight(coding: str, weights: dict[str, float]) -> float:
    """``coding``'s q-value under ``weights`` (what :func:`parse` read)."""
    if coding in weights:
        return weights[coding]
    star = weights.get("*")
    if coding == IDENTITY:
        # Implicitly acceptable (RFC 9110 §12.5.3) but the last resort:
        # any coding the client accepts at all is preferred to it.
        return IMPLICIT_IDENTITY if star is None or star > 0 else 0.0
    return star if star is not None else 0.0


@lru_cache(maxsize=256)
def choose(header: str | None, available: Sequence[str] = PREFERENCE) -> str | None:
    """The coding to use among ``available`` plus identity, or ``None`` for 406.

    ``available`` lists the codings the server can send, in its order of
    preference. ``None`` means every coding, identity included, is forbidden.
    """
    if header is None:
        return IDENTITY  # no header: any coding is allowed, but identity is safest
    weights = parse(header)
    best, best_q = None, 0.0
    for coding in (*available, IDENTITY):
        q = _weight(coding, weights)
        if q > best_q:
            best, best_q = coding, q
    return best


@lru_cache(maxsize=256)
def identity_refused(header: str | None) -> bool:
    """Whether the client forbids identity (``identity;q=0``, or ``*;q=0`` without a q for
    identity): then a body is encoded however small it is."""
    return header is not None and _weight(IDENTITY, parse(header)) == 0.0
