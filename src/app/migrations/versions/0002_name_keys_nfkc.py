"""Name keys by Unicode's NFKC_Casefold: names that read the same are one name.

The key is the name in the compatibility form on both sides of the case
folding, without the characters that show nothing: a combining accent and a
composed letter, the Angstrom sign and Å, a ligature and its letters, a name
with a zero-width space in it and the same name without. The rule is written
out here, not imported, so this migration keeps doing what it did when the
app's rule changes again.

Of things stored before that now read as one, the one whose key is already
the new one keeps it, else the oldest takes it; the others keep their old
keys, so all of them stay (nothing is renamed or lost), and each is asked
for another name at its next edit. They are logged.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KEY_MAX = 256  # the column's length
logger = logging.getLogger("alembic.runtime.migration")
things = sa.table(
    "things",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("name_key", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt, 15.1).
IGNORED = {
    code: None
    for start, end in (
        (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
        (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
        (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
        (0xE0000, 0xE0FFF),
    )
    for code in range(start, end + 1)
}  # fmt: skip


def nfkc_key(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).translate(IGNORED).casefold()
    return unicodedata.normalize("NFKC", folded).translate(IGNORED)


def folded_key(name: str) -> str:
    return name.casefold()


def rekey(key: Callable[[str], str]) -> None:
    """Every row's key by ``key``; a row whose new key is taken, or too long, keeps its own."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(things.c.id, things.c.name, things.c.name_key).order_by(
            things.c.created_at, things.c.id
        )
    ).all()
    wanted = {row.id: key(row.name) for row in rows}
    kept = {row.id for row in rows if len(wanted[row.id]) > KEY_MAX}
    # A row that already holds its new key keeps it; then the oldest first.
    order = sorted(rows, key=lambda row: wanted[row.id] != row.name_key)  # stable: by age
    claimed: dict[str, object] = {}
    for row in order:
        if row.id not in kept and claimed.setdefault(wanted[row.id], row.id) != row.id:
            kept.add(row.id)
    final = {row.id: row.name_key if row.id in kept else wanted[row.id] for row in rows}
    if len(set(final.values())) != len(final):
        # A new key equal to a kept row's old one: keys made by either rule cannot do
        # that (a kept key holds what the new rule folds or drops), but if one ever did,
        # the transaction stops here with nothing changed, not at the unique index.
        raise RuntimeError("two things would share a name key; nothing was changed")
    changes = [
        {"row_id": row.id, "new_key": wanted[row.id]}
        for row in rows
        if row.id not in kept and wanted[row.id] != row.name_key
    ]
    if kept:
        names = ", ".join(repr(row.name) for row in rows if row.id in kept)
        logger.warning("names whose new key is taken or too long keep their own: %s", names)
    if not changes:
        return
    # Through a temporary key first, so that no row takes a key another still holds (no
    # name holds a control character, so no real key starts with one).
    statement = (
        sa.update(things)
        .where(things.c.id == sa.bindparam("row_id"))
        .values(name_key=sa.bindparam("new_key"))
    )
    bind.execute(
        statement, [{"row_id": c["row_id"], "new_key": f"\x01{c['row_id']}"} for c in changes]
    )
    bind.execute(statement, changes)


def upgrade() -> None:
    rekey(nfkc_key)


def downgrade() -> None:
    rekey(folded_key)
