"""The example app's data: a catalogue of Things.

A Thing's name is unique regardless of case: ``name_key`` holds the name
case-folded and normalised in Python (:func:`name_key`), under a unique
index, so the rule is the same on SQLite and PostgreSQL (their ``lower()``
disagree outside ASCII). ``version`` is SQLAlchemy's version counter: every
UPDATE says ``WHERE version = :seen``, so two edits of one version cannot
both land (optimistic locking).
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, MetaData, String, Text, TypeDecorator, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME_MAX = 64
DESCRIPTION_MAX = 2000

# Constraint names that Alembic can find again on both engines.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A time stored in UTC and read back as an aware UTC datetime on every engine
    (SQLite keeps no zone, so SQLAlchemy alone returns naive values there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - the column's type
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


#: Characters of a name's key, at most (the column's length).
NAME_KEY_MAX = 4 * NAME_MAX

#: Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt, 15.1):
#: characters that show nothing (zero-width spaces and joiners, the soft hyphen,
#: variation selectors, fillers, tags), which Python's ``unicodedata`` does not list.
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip
_IGNORED = {code: None for start, end in DEFAULT_IGNORABLE for code in range(start, end + 1)}


def shows_nothing(character: str) -> bool:
    """Whether ``character`` is one that Unicode says to show as nothing, or the blank
    Braille pattern (a symbol, drawn as an empty cell)."""
    return ord(character) in _IGNORED or character == "\u2800"


def name_key(name: str) -> str:
    """What makes two names the same: Unicode's NFKC_Casefold, as Python can make it.

    Case-folded (``Straße`` = ``STRASSE``), in the compatibility form on both sides
    of the folding, so that text that reads the same is the same name (``Cafe`` with
    a combining accent is ``Café``, the Angstrom sign ``Å`` is ``Å``, the ligature
    ``ﬁ`` is ``fi``), and without the characters that show nothing (``Plain`` with a
    zero-width space or a soft hyphen in it is ``Plain``). Migration 0002 keys the
    names stored before.
    """
    folded = unicodedata.normalize("NFKC", name).translate(_IGNORED).casefold()
    return unicodedata.normalize("NFKC", folded).translate(_IGNORED)


class Thing(Base):
    __tablename__ = "things"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    # casefold() and NFKC can lengthen a name (ß → ss), so the key has room to spare.
    name_key: Mapped[str] = mapped_column(String(NAME_KEY_MAX), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own protocol
