"""The Things list page and JSON list as the template repository's stack would serve them.

Flask with the template stack's page extensions (``flask_template.page_app``:
Compress, Talisman with nonces, Flask-WTF, Flask-Assets), Flask-SQLAlchemy
over the same SQLite file, and Flask-Limiter raised far above the load but
counting every request (memory storage), as Shipshape's default limit does,
on a gunicorn sync worker. It renders the example app's own
``things/list.html`` with the example's own query rules (``app.things``), so
both stacks do the same work: a count and a page of 25 rows, then the page or
the JSON.
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import func, select

from app import things
from app.models import Base, Thing
from bench.peers.flask_template import page_app

DATABASE_KEY = "BENCH_THINGS_DB"  # the seeded database's sync URL (bench/suite.py seeds it)


def create_app() -> Flask:
    app = page_app(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ[DATABASE_KEY]
    db = SQLAlchemy(app, metadata=Base.metadata)

    def page() -> tuple[things.ListQuery, things.Page]:
        query = things.ListQuery.from_args(request.args)
        where = query.where()
        total = db.session.scalar(select(func.count()).select_from(Thing).where(*where))
        rows = db.session.scalars(
            select(Thing)
            .where(*where)
            .order_by(*things.SORTS[query.sort])
            .limit(things.PER_PAGE)
            .offset((query.page - 1) * things.PER_PAGE)
        )
        return query, things.Page(rows.all(), total or 0, query.page)

    # The endpoints the template links to, under the example app's names.
    pages = Blueprint("things", __name__, url_prefix="/things")

    @pages.get("/")
    def index() -> str:
        query, found = page()
        return render_template(
            "things/list.html", page=found, query=query, sorts=things.SORT_LABELS,
            show_cookie_banner=True,
        )  # fmt: skip

    for rule, endpoint in (("/new", "create"), ("/download", "download"), ("/<thing_id>", "show")):
        pages.add_url_rule(rule, endpoint, lambda **_: ("", 404))
    app.register_blueprint(pages)

    @app.get("/api/things")
    def api_list() -> ResponseReturnValue:
        _, found = page()
        return jsonify(
            items=[things.to_json(thing) for thing in found.items],
            total=found.total, page=found.page, pages=found.pages, per_page=found.per_page,
        )  # fmt: skip

    @app.get("/")
    def home() -> str:
        return "ok"  # the harness's start-up probe

    return app
