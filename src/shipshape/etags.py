"""Entity tags of ``If-Match`` and ``If-None-Match`` (RFC 9110 §8.8.3, §13.1.1-2).

One reading of the two headers, for the static files and for the views, so
that a value means the same wherever it is sent. :func:`parse` takes the
header's text as the ASGI layers give it (:func:`shipshape.scope.header`,
:func:`shipshape.request.request_header`: repeated lines joined into one
list) and gives ``"*"`` or the list's tags, in order; :func:`weak_match` is
the comparison ``If-None-Match`` uses (§13.1.2)::

    tags = parse('W/"5", "6"')  # (EntityTag('"5"', weak=True), EntityTag('"6"', weak=False))
    weak_match(tags, '"5"')  # True

The grammar is RFC 9110's: ``"*" / #entity-tag``, where ``entity-tag =
[ weak ] opaque-tag``, ``weak = %s"W/"`` (case-sensitive, no blank after the
slash) and ``opaque-tag = DQUOTE *etagc DQUOTE``, etagc being any visible
character but ``"`` (obs-text included). Where the static files and the API
read a value differently before, the RFC decides:

* a quoted tag may contain a comma: ``"a,b"`` is one tag. The static files
  split the value on every comma, so such a tag never matched itself;
* an element that is no entity tag (an unquoted ``5``, ``'5'``, ``W/ "5"``,
  ``"1" "2"`` with no comma between, ``"1";``, a ``*`` inside a list) is
  :data:`NOT_A_TAG`, which no tag matches; the list's other elements still
  count. RFC 9110 says nothing of an invalid element; the API took the whole
  value for one tag that matches nothing, the static files skipped the bad
  element (``W/"e", x`` got its 304). Reading each element on its own keeps
  both of what the tests hold (``"1" "2"`` matches nothing, ``W/"e", x``
  matches ``"e"``) and is the tolerance §5.6.1.2 asks of list recipients;
  only a list that mixes a tag with a malformed element is read differently
  than by the API before (``"5", x`` now names version 5);
* an unquoted tag matched nothing in either before, and still does: it is
  never taken for the quoted one (Werkzeug's ``parse_etags`` took ``5`` for
  ``"5"``);
* empty elements are ignored (``"5", ,"6",``, §5.6.1.2), and a value with
  none at all (blank, ``,,``) is an empty list, which ``#`` allows (§5.6.1):
  no tag, so ``If-Match`` fails and ``If-None-Match`` holds, as before;
* blanks around elements are OWS, spaces and tabs (§5.6.3).
"""

from __future__ import annotations

import re
from typing import Final, Literal, NamedTuple


class EntityTag(NamedTuple):
    """One element of an ``If-Match`` or ``If-None-Match`` list.

    Arguments:
        opaque: the opaque-tag, quotes included (``'"5"'`` for ``W/"5"``); ``None``
            for an element that is no entity tag, which matches nothing.
        weak: whether it came in the weak form, ``W/"5"``.
    """

    opaque: str | None
    weak: bool

    def matches_weakly(self, etag: str) -> bool:
        """Weak comparison with a representation's ``etag`` (RFC 9110 §8.8.3.2): the
        opaque-tags are equal, whichever of the two is weak."""
        return self.opaque is not None and self.opaque == etag.removeprefix("W/")


#: An element that is no entity tag (``5``, ``"1" "2"``): it matches no tag.
NOT_A_TAG: Final = EntityTag(None, weak=False)

#: One element and the comma (or end) after it: an entity tag with the blanks around it,
#: else whatever runs to the next comma, which :func:`parse` reads as :data:`NOT_A_TAG`.
#: Both branches are linear: the tag's characters exclude its closing quote, and the
#: rest stops at the first comma.
_ELEMENT_RE = re.compile(r'[ \t]*(?:(W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*|([^,]*))(?:,|\Z)')


def parse(value: str) -> tuple[EntityTag, ...] | Literal["*"]:
    """``"*"`` (any), or the tags a header's ``value`` lists, in order.

    ``parse('W/"5", x')`` is ``(EntityTag('"5"', weak=True), NOT_A_TAG)``.
    """
    if value.strip(" \t") == "*":
        return "*"
    tags: list[EntityTag] = []
    for weak, opaque, other in _ELEMENT_RE.findall(value):
        if opaque:
            tags.append(EntityTag(opaque, weak=bool(weak)))
        elif other.strip(" \t"):
            tags.append(NOT_A_TAG)
    return tuple(tags)


def weak_match(tags: tuple[EntityTag, ...] | Literal["*"], etag: str) -> bool:
    """Whether ``If-None-Match``'s ``tags`` name ``etag`` (RFC 9110 §13.1.2): ``*``, or
    any tag that compares weakly equal to it. ``etag`` is as the response sends it."""
    return tags == "*" or any(tag.matches_weakly(etag) for tag in tags)
