"""The Things catalogue's rules, in one place for the pages and the JSON API.

What a valid name and description are (:func:`check_name`,
:func:`check_description`), how the list is filtered, sorted and paged
(:class:`ListQuery`), and the writes with their two refusals: a name already
taken (:class:`DuplicateNameError`) and an edit made against a version that is no
longer current (:class:`StaleVersionError`). Every query is built by SQLAlchemy with
bound parameters; the name filter is one bound LIKE pattern (:data:`NAME_FILTER`)
with ``%``, ``_`` and its escape character escaped, a literal substring.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.models import (
    DESCRIPTION_MAX,
    NAME_KEY_MAX,
    NAME_MAX,
    Thing,
    name_key,
    shows_nothing,
    utcnow,
)
from shipshape.request import NotUTF8Error, parse_urlencoded

PER_PAGE = 25
QUERY_MAX = 200  # characters of a name filter
PAGE_MAX = 1_000_000
SORTS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "name": (Thing.name_key.asc(), Thing.id.asc()),
    "-name": (Thing.name_key.desc(), Thing.id.desc()),
    "created": (Thing.created_at.asc(), Thing.id.asc()),
    "-created": (Thing.created_at.desc(), Thing.id.desc()),
}
SORT_LABELS = {
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
    "created": "Oldest first",
    "-created": "Newest first",
}
DEFAULT_SORT = "name"
# Spreadsheets run a cell that starts with one of these as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Line breaks a description may hold; every other control character is refused.
DESCRIPTION_CONTROLS = frozenset("\n\r\t")
# A name needs one character of these kinds (letters, numbers, punctuation, symbols)
# that shows something (``models.shows_nothing``: the Hangul fillers are letters).
VISIBLE = frozenset("LNPS")
# Embeddings, overrides, isolates and the marks (left-to-right, right-to-left, Arabic
# letter): they reorder the text around a name wherever it is shown (a list, a CSV in
# a spreadsheet), the marks invisibly, so a name cannot hold them.
DIRECTION_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
# Unicode's own line and paragraph breaks, which are no control characters (Zl, Zp):
# inside a name they break the line of a list or a link where it is shown, as a line
# feed would (at its ends they are blanks, stripped with the others).
LINE_SEPARATORS = frozenset("\u2028\u2029")


class InvalidQueryError(ValueError):
    """A list parameter that cannot be read; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class DuplicateNameError(Exception):
    message = "A thing with this name already exists. Choose another name."


class ThingGoneError(Exception):
    """The thing was deleted by another request while this one worked on it."""


class StaleVersionError(Exception):
    """The thing changed since the caller read it; ``current`` is what it is now."""

    def __init__(self, current: Thing) -> None:
        super().__init__(f"thing {current.id} is at version {current.version}")
        self.current = current


def _bad_characters(value: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """Why ``value`` cannot be stored as text, or ``None``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. JSON's "\ud800"
        return "contains characters that are not valid text"
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
        return "contains control characters"
    return None


#: Unicode's White_Space characters, which a name is stripped of. Not ``str.strip()``'s
#: set, which also holds the information separators U+001C to U+001F: a control
#: character at a name's end was dropped where one inside it was refused.
WHITE_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def check_name(raw: str | None) -> str:
    """The name to store (stripped), or ``ValueError`` with the message to show."""
    name = (raw or "").strip(WHITE_SPACE)
    if not name:
        raise ValueError("Enter a name")
    if len(name) > NAME_MAX:
        raise ValueError(f"Name must be {NAME_MAX} characters or fewer")
    problem = _bad_characters(name)
    if problem:
        raise ValueError(f"Name {problem}")
    if not LINE_SEPARATORS.isdisjoint(name):
        raise ValueError("Name contains line or paragraph separators")
    if not any(unicodedata.category(c)[0] in VISIBLE and not shows_nothing(c) for c in name):
        # Only spaces, joiners and marks (a zero-width space): a link nobody can see.
        raise ValueError("Name must have a letter, digit, punctuation mark or symbol")
    if not DIRECTION_CONTROLS.isdisjoint(name):
        raise ValueError("Name contains text-direction controls")
    if len(name_key(name)) > NAME_KEY_MAX:  # a few characters expand eighteenfold
        raise ValueError("Name is too long: some of its characters stand for several")
    return name


def check_description(raw: str | None) -> str:
    """The description to store (as typed), or ``ValueError`` with the message to show."""
    if raw is None:
        return ""
    if len(raw) > DESCRIPTION_MAX:
        raise ValueError(f"Description must be {DESCRIPTION_MAX:,} characters or fewer")
    problem = _bad_characters(raw, DESCRIPTION_CONTROLS)
    if problem:
        raise ValueError(f"Description {problem}")
    return raw


def parse_id(text: str) -> uuid.UUID | None:
    """The id a URL names, for the pages and the API alike, in the one form the app
    writes it (``str(uuid)``: lowercase, hyphenated), else ``None``: ``uuid.UUID``
    also reads braces, capitals, a ``urn:uuid:`` prefix, no hyphens (or any number
    of them, anywhere), which gave one thing many addresses."""
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return None
    return parsed if str(parsed) == text else None


#: A version as the app writes it (an ETag's ``"5"``, the edit form's hidden field):
#: ASCII digits with no sign, blank or leading zero, up to the int32 column's largest.
#: Versions start at 1, so ``0`` is none either.
_VERSION_RE = re.compile(r"[1-9][0-9]{0,9}")
VERSION_MAX = 2**31 - 1


def is_version(number: int) -> bool:
    """Whether a version can be ``number``: versions start at 1, and the column is int32."""
    return 1 <= number <= VERSION_MAX


def check_version(version: int) -> int:
    """A version a client sent as a number, or ``ValueError``: a version below 1 or past
    the column's largest was never one this app wrote, so it is no conflict either."""
    if not is_version(version):
        raise ValueError(f"Version must be a whole number from 1 to {VERSION_MAX:,}, as sent")
    return version


def parse_version(text: str) -> int | None:
    """The version ``text`` names, or ``None`` for text the app never wrote (``01``,
    ``+1``, `` 1``, ``١``): a version is compared as the app writes it, so another
    spelling of the number is a tampered form or an ETag this API never sent."""
    if not _VERSION_RE.fullmatch(text):
        return None
    version = int(text)
    return version if is_version(version) else None


#: The list's name filter, one bound pattern for every statement that filters.
NAME_FILTER = Thing.name_key.like(bindparam("pattern"), escape="/")


@dataclass(frozen=True)
class ListQuery:
    """A name filter, a sort and a page number, as the list page and the API read them."""

    q: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1

    @classmethod
    def from_query_string(cls, raw: bytes) -> ListQuery:
        """The query a URL's query string names, read as UTF-8 strictly: a parameter that
        is not (``q=%ff``) is an :class:`InvalidQueryError` that names it, where
        ``request.args`` would read the filter ``%FF`` and search for it."""
        try:
            pairs = parse_urlencoded(raw)
        except NotUTF8Error as exc:
            field = exc.name or "query"
            what = _QUERY_LABELS.get(field, "query string")
            raise InvalidQueryError(field, f"The {what} is not valid UTF-8 text") from None
        args: dict[str, str] = {}
        for name, value in pairs:
            args.setdefault(name, value)  # the first of a repeated one, as request.args
        return cls.from_args(args)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ListQuery:
        """The query ``args`` name. The filter is stripped of the blanks a name is
        (:data:`WHITE_SPACE`); a control character left in it is refused, as in a
        name: ``str.strip()`` dropped U+001C to U+001F at its ends only."""
        q = args.get("q", "").strip(WHITE_SPACE)
        if len(q) > QUERY_MAX:
            raise InvalidQueryError("q", f"The filter must be {QUERY_MAX} characters or fewer")
        if _bad_characters(q):
            raise InvalidQueryError("q", "The filter contains characters that cannot be searched")
        sort = args.get("sort") or DEFAULT_SORT
        if sort not in SORTS:
            raise InvalidQueryError("sort", f"Sort by one of: {', '.join(SORTS)}")
        raw_page = args.get("page") or "1"
        page = (
            int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) <= 7 else 0
        )
        if not 1 <= page <= PAGE_MAX:
            raise InvalidQueryError(
                "page", f"The page must be a whole number from 1 to {PAGE_MAX:,}"
            )
        return cls(q, sort, page)

    def args(self, **changes: Any) -> dict[str, str]:
        """The query string's values, without defaults, for links that keep them."""
        # A page renders a dozen links: asdict() (a deep copy, twice) cost more than url_for.
        values = {name: str(changes.get(name, getattr(self, name))) for name in _LINK_DEFAULTS}
        return {k: v for k, v in values.items() if v != _LINK_DEFAULTS[k]}

    def where(self) -> list[ColumnElement[bool]]:
        """The name filter, if any; its pattern is bound from :meth:`values`."""
        return [NAME_FILTER] if self.q else []

    def values(self) -> dict[str, str]:
        """The filter's bound value: the case-folded text as a literal substring, with
        ``/`` escaping ``%``, ``_`` and itself (what ``contains(autoescape=True)`` does)."""
        if not self.q:
            return {}
        escaped = name_key(self.q).replace("/", "//").replace("%", "/%").replace("_", "/_")
        return {"pattern": f"%{escaped}%"}


# The defaults that links leave out, as the query string spells them.
_LINK_DEFAULTS = {field.name: str(field.default) for field in fields(ListQuery)}
# What the list's parameters are called in its error messages.
_QUERY_LABELS = {"q": "filter", "sort": "sort", "page": "page"}


class ThingData(Protocol):
    """What the list, the CSV and the JSON read of a thing: a :class:`Thing`, or a row of
    :data:`LIST_COLUMNS`."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def version(self) -> int: ...


@dataclass(frozen=True)
class Page:
    items: Sequence[ThingData]
    total: int
    page: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


# A list reads plain rows, not Things: no identity map, no instances to build (a read
# only page has nothing to write back), the same types (UUIDs, aware UTC times).
LIST_COLUMNS = tuple(
    Thing.__table__.c[name]
    for name in ("id", "name", "description", "created_at", "updated_at", "version")
)


def _count(query: ListQuery) -> Select[int]:
    return select(func.count()).select_from(Thing).where(*query.where()).params(query.values())


async def list_things(session: AsyncSession, query: ListQuery) -> Page:
    """A page of things and the total, in one query over the request's transaction.

    The total rides along as a scalar subquery, which both engines evaluate once
    (SQLite's ``count(*) OVER ()`` would sort every row instead of walking the
    index). A page with no rows carries no total, so only then is it counted alone.
    """
    connection = await session.connection()
    values = {"limit": PER_PAGE, "offset": (query.page - 1) * PER_PAGE, **query.values()}
    rows = (await connection.execute(_list_statement(bool(query.q), query.sort), values)).all()
    total = rows[0].total if rows else await connection.scalar(_count(query))
    return Page(rows, total or 0, query.page)


@functools.cache
def _list_statement(filtered: bool, sort: str) -> Select[Any]:
    """The list's query for a filter or none and a sort, built once: building it and its
    cache key took a twentieth of a list request. The values are bound per request.

    The total counts names, never null, not rows: SQLite counts a whole table's rows in
    one step of its virtual machine, which no step budget can stop, so such a read
    never runs on the event loop's thread (``shipshape.sqlite``); names are counted a
    step a row, and a table too big for the loop is counted in aiosqlite's thread."""
    where = [NAME_FILTER] if filtered else []
    total = select(func.count(Thing.name_key)).where(*where).scalar_subquery()
    return (
        select(*LIST_COLUMNS, total.label("total"))
        .where(*where)
        .order_by(*SORTS[sort])
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


def export_query(query: ListQuery) -> Select[Any]:
    """Every thing the list would show, on every page, in the list's order."""
    statement = select(*LIST_COLUMNS).where(*query.where()).order_by(*SORTS[query.sort])
    return statement.params(query.values())


async def get_thing(session: AsyncSession, thing_id: uuid.UUID | None) -> Thing | None:
    if thing_id is None:
        return None
    return await session.get(Thing, thing_id)


async def name_taken(session: AsyncSession, name: str, other_than: uuid.UUID | None) -> bool:
    """Whether a thing other than ``other_than`` has ``name`` (or one that reads the same)."""
    found = await session.scalar(select(Thing.id).where(Thing.name_key == name_key(name)))
    return found is not None and found != other_than


def _name_clash(error: IntegrityError) -> bool:
    """Whether the unique index on the name refused the row (and not another constraint)."""
    return "name_key" in str(error.orig)


async def _reload(session: AsyncSession, thing_id: uuid.UUID) -> Thing:
    """After a rollback: the thing as the database has it now, or :class:`ThingGoneError`."""
    current = await session.get(Thing, thing_id, populate_existing=True)
    if current is None:
        raise ThingGoneError
    return current


async def create_thing(session: AsyncSession, name: str, description: str) -> Thing:
    if await name_taken(session, name, None):
        raise DuplicateNameError
    now = utcnow()  # one instant: a new thing was never updated after it was created
    thing = Thing(
        name=name, name_key=name_key(name), description=description, created_at=now, updated_at=now
    )
    session.add(thing)
    try:
        await session.flush()
    except IntegrityError as exc:  # lost the race for the name to another request
        await session.rollback()
        if _name_clash(exc):
            raise DuplicateNameError from exc
        raise
    return thing


async def update_thing(
    session: AsyncSession, thing: Thing, name: str, description: str, seen_version: int
) -> Thing:
    """Apply an edit made against ``seen_version``; :class:`StaleVersionError` if that is stale.

    A race lost to another request leaves ``thing`` reloaded as the database has
    it now, so the caller can still show it: a name taken meanwhile is
    :class:`DuplicateNameError`, an edit landed meanwhile :class:`StaleVersionError`,
    and a delete :class:`ThingGoneError`.
    """
    if thing.version != seen_version:
        raise StaleVersionError(thing)
    if await name_taken(session, name, thing.id):
        raise DuplicateNameError
    if (thing.name, thing.description) == (name, description):
        return thing  # nothing changed: no new version
    thing_id = thing.id  # a rollback expires the object: read it before
    thing.name, thing.name_key, thing.description = name, name_key(name), description
    thing.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        await _reload(session, thing_id)
        if _name_clash(exc):
            raise DuplicateNameError from exc
        raise
    except StaleDataError:  # another edit or a delete landed between our read and our write
        await session.rollback()
        raise StaleVersionError(await _reload(session, thing_id)) from None
    return thing


async def delete_thing(session: AsyncSession, thing: Thing, seen_version: int | None) -> None:
    """Delete ``thing`` as ``seen_version`` (any, for ``None``). An edit that landed
    meanwhile is :class:`StaleVersionError`; a delete that landed meanwhile is
    :class:`ThingGoneError`: what the request would have found a moment later (two deletes
    at once both said 204, though one of them deleted nothing)."""
    if seen_version is not None and thing.version != seen_version:
        raise StaleVersionError(thing)
    thing_id = thing.id  # a rollback expires the object: read it before
    await session.delete(thing)
    try:
        await session.flush()
    except StaleDataError:
        await session.rollback()
        raise StaleVersionError(await _reload(session, thing_id)) from None  # or ThingGone


def neutralise(cell: str) -> str:
    """A cell that a spreadsheet will show as text, never run as a formula.

    The formula may start after blanks or characters that show nothing (a
    spreadsheet may trim them), or with a full-width sign (which some read as
    the ASCII one): each is looked past, or folded, before the check. A piece
    after a ``;`` is checked as a cell of its own: a spreadsheet set to split
    on ``;`` (many locales' list separator) may read it as one, quotes or not.
    """
    if ";" in cell:  # a spreadsheet that splits on ';' starts a cell after each one
        cell = ";".join([cell.split(";", 1)[0], *map(neutralise, cell.split(";")[1:])])
    start = 0
    while start < len(cell) and (cell[start].isspace() or shows_nothing(cell[start])):
        start += 1
    first = unicodedata.normalize("NFKC", cell[start : start + 1])
    if cell.startswith(FORMULA_STARTS) or first.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


CSV_COLUMNS = ("id", "name", "description", "created_at", "updated_at", "version")


#: The start of the CSV download: a BOM, so that spreadsheets read it as UTF-8, and the header.
CSV_HEAD = ("\ufeff" + ",".join(f'"{column}"' for column in CSV_COLUMNS) + "\r\n").encode()


def csv_rows(things: Sequence[ThingData]) -> bytes:
    """A batch of the download's rows, as UTF-8 CSV (after :data:`CSV_HEAD`)."""
    out = io.StringIO()
    # Every cell quoted, so that a reader that honours quotes keeps a cell with a ';'
    # whole; neutralise covers one that splits on ';' all the same.
    csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerows(
        [
            str(thing.id),
            neutralise(thing.name),
            neutralise(thing.description),
            thing.created_at.isoformat(),
            thing.updated_at.isoformat(),
            thing.version,
        ]
        for thing in things
    )
    return out.getvalue().encode()


def to_json(thing: ThingData) -> dict[str, Any]:
    return {
        "id": str(thing.id),
        "name": thing.name,
        "description": thing.description,
        "created_at": thing.created_at.isoformat(),
        "updated_at": thing.updated_at.isoformat(),
        "version": thing.version,
    }
