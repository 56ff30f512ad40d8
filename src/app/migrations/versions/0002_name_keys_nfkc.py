"""Name keys in Unicode's compatibility form on both sides of the case folding.

Names that read the same are one name: a combining accent and a composed
letter, the Angstrom sign and Å, a ligature and its letters. The rule is
written out here, not imported, so this migration keeps doing what it did
when the app's rule changes again.

Two things that existed before and are the same under the new rule keep
their old keys, so both stay (nothing is renamed or lost), and the first
edit of the later one is asked for another name. They are logged.

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


def nfkc_key(name: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


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
    claimed: dict[str, object] = {}
    for row in rows:  # the oldest thing gets the key; the later ones keep theirs
        if row.id in kept:
            continue
        first = claimed.setdefault(wanted[row.id], row.id)
        if first != row.id:
            kept.add(row.id)
    settled = False
    while not settled:  # a row whose new key is a kept row's old one keeps its own too
        taken = {row.name_key for row in rows if row.id in kept}
        late = {r.id for r in rows if r.id not in kept and wanted[r.id] in taken - {r.name_key}}
        kept |= late
        settled = not late
    changes = [
        {"row_id": row.id, "new_key": wanted[row.id]}
        for row in rows
        if row.id not in kept and wanted[row.id] != row.name_key
    ]
    if kept:
        names = ", ".join(repr(row.name) for row in rows if row.id in kept)
        logger.warning("names that read as another's keep their old keys: %s", names)
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
