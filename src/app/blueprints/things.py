"""The Things pages: list, CSV, create, view, edit and delete, on Bootstrap forms.

Every write is one transaction that the view commits when all of it is done;
anything else rolls back (:mod:`shipshape.database`). CSRF is checked before
any view runs, and no view here is exempt. Names are user text: the templates
escape them, flash messages included.
"""

from __future__ import annotations

import uuid

from quart import Blueprint, Response, abort, flash, redirect, request, url_for
from quart.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from app import things
from app.forms import ThingForm
from app.models import Thing
from app.things import (
    DuplicateNameError,
    InvalidQueryError,
    ListQuery,
    StaleVersionError,
    ThingGoneError,
)
from shipshape import render_template
from shipshape.database import current_database, current_session

blueprint = Blueprint("things", __name__, url_prefix="/things")
GONE = "There is no such thing. It may have been deleted."
TAMPERED = "The form was changed in a way it cannot be. Reload it and try again."


def list_query() -> ListQuery:
    try:
        return ListQuery.from_query_string(request.query_string)
    except InvalidQueryError as exc:
        raise BadRequest(str(exc)) from None


async def name_also_taken(form: ThingForm, other_than: uuid.UUID | None) -> None:
    """A form refused for its other fields says as well whether its name is taken,
    so that every error can be fixed in one go (the write would only find it next)."""
    if not form.is_submitted() or form.name.errors or not form.name.data:
        return
    if await things.name_taken(await current_session(), form.name.data, other_than):
        form.name.errors = [DuplicateNameError.message]


async def find(thing_id: str) -> Thing:
    thing = await things.get_thing(await current_session(), things.parse_id(thing_id))
    if thing is None:
        abort(404, GONE)
    return thing


@blueprint.get("/")
async def index() -> ResponseReturnValue:
    query = list_query()
    page = await things.list_things(await current_session(), query)
    if query.page > page.pages:
        abort(404, f"There is no page {query.page}; the last page is {page.pages}.")
    return await render_template(
        "things/list.html", page=page, query=query, sorts=things.SORT_LABELS
    )


@blueprint.get("/download")
async def download() -> Response:
    """The list as CSV, every page of it, streamed in batches as it is read.

    A HEAD gets the same status and headers from the same query asked for no
    rows, in one piece: streamed, its body would still be on its way when a
    client that has the headers closes, and the request would log as a
    disconnect."""
    query = things.export_query(list_query())
    if request.method != "HEAD":
        body = await current_database().stream(query, things.csv_rows, head=things.CSV_HEAD)
        response = Response(body, mimetype="text/csv")
    else:
        rows = await current_database().stream(query.limit(0), things.csv_rows)
        response = Response(b"".join([chunk async for chunk in rows]), mimetype="text/csv")
        del response.headers["Content-Length"]  # the GET's is not known in advance either
    response.headers["Content-Disposition"] = 'attachment; filename="things.csv"'
    response.headers["Cache-Control"] = "private"  # as the list page it downloads
    return response


@blueprint.route("/new", methods=["GET", "POST"])
async def create() -> ResponseReturnValue:
    form = await ThingForm.from_request()
    if form.validate_on_submit():
        try:
            thing = await things.create_thing(await current_session(), *form.values())
        except DuplicateNameError as exc:
            form.name.errors = [exc.message]
        else:
            await current_database().commit()
            await flash(f"“{thing.name}” was added.", "success")
            return redirect(url_for("things.show", thing_id=thing.id), 303)
    else:
        await name_also_taken(form, other_than=None)
    page = await render_template("things/form.html", form=form, thing=None)
    return (page, 422) if form.is_submitted() else page


@blueprint.get("/<thing_id>")
async def show(thing_id: str) -> ResponseReturnValue:
    return await render_template("things/detail.html", thing=await find(thing_id))


@blueprint.route("/<thing_id>/edit", methods=["GET", "POST"])
async def edit(thing_id: str) -> ResponseReturnValue:
    thing = await find(thing_id)
    form = await ThingForm.from_request(obj=thing)
    newer: Thing | None = None
    if form.validate_on_submit():
        seen = form.seen_version()
        if seen is None:
            raise BadRequest(TAMPERED)
        try:
            await things.update_thing(await current_session(), thing, *form.values(), seen)
        except DuplicateNameError as exc:
            form.name.errors = [exc.message]
        except ThingGoneError:
            abort(404, GONE)
        except StaleVersionError as exc:
            newer = exc.current
            # Keep what this person typed; the next save is made against the newer version.
            form.version.data = str(newer.version)
        else:
            await current_database().commit()
            await flash(f"“{thing.name}” was saved.", "success")
            return redirect(url_for("things.show", thing_id=thing.id), 303)
    else:
        await name_also_taken(form, other_than=thing.id)
    status = 409 if newer is not None else 422 if form.is_submitted() else 200
    page = await render_template("things/form.html", form=form, thing=thing, newer=newer)
    return page, status


@blueprint.route("/<thing_id>/delete", methods=["GET", "POST"])
async def delete(thing_id: str) -> ResponseReturnValue:
    thing = await find(thing_id)
    form = await ThingForm.from_request(obj=thing)
    changed = False
    if request.method == "POST":
        seen = form.seen_version()
        if seen is None:
            raise BadRequest(TAMPERED)
        name = thing.name
        try:
            await things.delete_thing(await current_session(), thing, seen)
        except StaleVersionError as exc:
            thing, changed = exc.current, True
            form = ThingForm(obj=thing)
        except ThingGoneError:  # another delete landed first
            abort(404, GONE)
        else:
            await current_database().commit()
            await flash(f"“{name}” was deleted.", "success")
            return redirect(url_for("things.index"), 303)
    page = await render_template("things/delete.html", thing=thing, form=form, changed=changed)
    return page, 409 if changed else 200
