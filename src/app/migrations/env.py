"""Alembic's environment: migrations run over the connection the app hands in.

Run them with ``quart --app app db upgrade`` (or ``make db-upgrade``); the
app's :class:`shipshape.database.Database` opens the connection from
``DATABASE_URL`` and passes it here, so there is no second place that
configures the database.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations through the app: quart --app app db upgrade")

context.configure(
    connection=connection,
    target_metadata=context.config.attributes["target_metadata"],
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
