"""The Things JSON list on bare Quart: the ceiling for S7's API on Shipshape's own stack.

Quart and SQLAlchemy's asyncio engine, as Shipshape's data layer makes it
(``shipshape.database.make_engine``: on SQLite, short reads on the event
loop's thread), one ``AsyncSession`` per request, the example's own query and
JSON (``app.things``): the database work of Shipshape's ``GET /api/things``
and nothing else. No security headers, no rate limit, no CSRF, no request
log, no compression (it answers ``br`` requests uncompressed, which costs it
no CPU). So it is what Shipshape's API would reach if every layer it adds
cost nothing: Shipshape's ratio to ``flask-things`` cannot pass this one's.
"""

from __future__ import annotations

import os

from quart import Quart, Response, g, jsonify
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import things
from shipshape.database import make_engine


def create_app() -> Quart:
    app = Quart(__name__, static_folder=None)
    engine: list[AsyncEngine] = []

    @app.before_serving
    async def connect() -> None:
        engine.append(make_engine(os.environ["DATABASE_URL"], timeout=5.0, pool_size=5))

    @app.after_serving
    async def disconnect() -> None:
        await engine.pop().dispose()

    @app.teardown_request
    async def close_session(_error: BaseException | None) -> None:
        session: AsyncSession | None = g.pop("session", None)
        if session is not None:
            await session.close()

    @app.get("/api/things")
    async def api_list() -> Response:
        session = g.session = AsyncSession(engine[0], expire_on_commit=False)
        page = await things.list_things(session, things.ListQuery.from_query_string(b""))
        return jsonify(
            items=[things.to_json(thing) for thing in page.items],
            total=page.total, page=page.page, pages=page.pages, per_page=page.per_page,
        )  # fmt: skip

    @app.get("/")
    async def home() -> str:
        return "ok"  # the harness's start-up probe

    return app
