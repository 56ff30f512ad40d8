"""Reading a request from its ASGI scope, for the middleware that runs before Quart.

Each header is read by one function here, so that every layer reads it the
same way: repeated lines joined with ``", "`` (RFC 9110 §5.3), each line
decoded on its own as Latin-1, as ASGI delivers raw bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from shipshape.typing import Scope

#: The scope key of the request's header index: the header list it was built
#: from, and each header's value by lower-case name.
_INDEX = "shipshape.headers"


def headers(scope: Scope) -> dict[bytes, str]:
    """Every request header by lower-case name, read as :func:`header` reads each;
    for a layer that reads several. The dict is the scope's index: never change it."""
    raw = scope.get("headers", ())
    index: tuple[object, dict[bytes, str]] | None = scope.get(_INDEX)
    if index is None or index[0] is not raw:
        index = (raw, _index(raw))
        scope[_INDEX] = index
    return index[1]


def header(scope: Scope, name: bytes) -> str | None:
    """One request header (``name`` lower-case), repeated lines joined; ``None`` when absent.

    Lines are joined with ``", "`` (RFC 9110 §5.3), except ``Cookie``'s, which
    are joined with ``"; "`` (RFC 9113 §8.2.3), or a cookie on a second line
    would be read as part of the first one's value.

    The first read indexes every header, so that each is decoded once however
    many layers read it; the index is kept in the scope with the list it was
    built from, and a layer that changes the headers (the proxy layer) sets a
    new list, which the next read indexes again.
    """
    return headers(scope).get(name)


def _index(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    values: dict[bytes, str] = {}
    repeated: dict[bytes, list[str]] = {}  # the lines of a header sent more than once
    for name, value in raw:
        text = value.decode("latin-1")
        if name not in values:
            values[name] = text
        else:
            repeated.setdefault(name, [values[name]]).append(text)
    for name, lines in repeated.items():  # joined once: a flood of lines stays linear
        values[name] = ("; " if name == b"cookie" else ", ").join(lines)
    return values


def request_host(scope: Scope) -> str:
    """The ``Host`` header after proxy resolution, or ``""``."""
    return header(scope, b"host") or ""
