"""A write that loses a race to another request's, forced on PostgreSQL.

The other write lands between the request's read and its own write, through a
connection of its own, as a second worker's would; PostgreSQL's read-committed
transactions let it, so the request's UPDATE or DELETE finds its version gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import delete, update

from app import create_app, things
from app.blueprints.api import ANY_VERSION_TRIES
from app.models import Thing
from tests.app.test_things_api import assert_error, csrf_headers, new
from tests.conftest import UNLIMITED, Client, client_of


@pytest.fixture
async def pg_app(postgres_url: str) -> AsyncIterator[Quart]:
    app = create_app(
        {"APP_ENV": "testing", "DATABASE_URL": postgres_url, "RATELIMIT_DEFAULT": UNLIMITED}
    )
    async with app.test_app():
        yield app


def meanwhile(app: Quart, original: Callable[..., Any], races: int = 1) -> Callable[..., Any]:
    """``original``, the first ``races`` times after another connection has changed the
    thing and committed; a call after those (a retry) runs as it is."""
    calls: list[Thing] = []

    async def raced(session: Any, thing: Thing, *args: Any) -> Any:
        calls.append(thing)
        if len(calls) > races:
            return await original(session, thing, *args)
        async with app.extensions["database"].engine.begin() as other:
            await other.execute(
                update(Thing)
                .where(Thing.id == thing.id)
                .values(description="theirs", version=Thing.version + 1)
            )
        return await original(session, thing, *args)

    return raced


async def raced(
    app: Quart, monkeypatch: pytest.MonkeyPatch, step: str, races: int = 1
) -> tuple[Client, str]:
    """A client and a new thing's id, with ``things.<step>`` set to lose its first races."""
    client: Client = client_of(app)
    thing = await new(client, "Raced")
    monkeypatch.setattr(things, step, meanwhile(app, getattr(things, step), races))
    return client, thing["id"]


@pytest.mark.parametrize(
    ("sent", "status", "code"),
    [
        ({"If-Match": '"1"'}, 412, "precondition_failed"),
        ({"If-Match": 'W/"1"'}, 412, "precondition_failed"),
        ({}, 409, "conflict"),  # the version in the body
    ],
)
async def test_a_replace_that_loses_a_race_gets_what_it_would_have_got_a_moment_later(
    pg_app: Quart, monkeypatch: pytest.MonkeyPatch, sent: dict[str, str], status: int, code: str
) -> None:
    client, thing_id = await raced(pg_app, monkeypatch, "update_thing")
    body: dict[str, Any] = {"name": "Raced", "description": "mine"}
    if not sent:
        body["version"] = 1
    response = await client.put(
        f"/api/things/{thing_id}", json=body, headers={**await csrf_headers(client), **sent}
    )
    payload = await response.get_json()
    assert response.status_code == status, payload
    assert_error(payload, status, code)
    assert payload["current"]["description"] == "theirs"  # the other change, kept
    assert payload["current"]["version"] == 2


async def test_a_delete_that_loses_a_race_to_an_edit_gets_412(
    pg_app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, thing_id = await raced(pg_app, monkeypatch, "delete_thing")
    response = await client.delete(
        f"/api/things/{thing_id}", headers={**await csrf_headers(client), "If-Match": '"1"'}
    )
    assert response.status_code == 412
    assert_error(await response.get_json(), 412, "precondition_failed")
    still = await client.get(f"/api/things/{thing_id}")
    assert (await still.get_json())["description"] == "theirs"


@pytest.mark.parametrize("sent", [{}, {"If-Match": "*"}, {"If-Match": '"1"'}])
async def test_a_delete_that_loses_a_race_to_another_delete_gets_404(
    pg_app: Quart, monkeypatch: pytest.MonkeyPatch, sent: dict[str, str]
) -> None:
    """Regression (PostgreSQL probe): two deletes at once both got 204, though one of
    them deleted nothing; a moment later it would have got 404."""
    client: Client = client_of(pg_app)
    thing_id = (await new(client, "Deleted twice"))["id"]
    original = things.delete_thing

    async def after_another(session: Any, thing: Thing, *args: Any) -> Any:
        async with pg_app.extensions["database"].engine.begin() as other:
            await other.execute(delete(Thing).where(Thing.id == thing.id))
        return await original(session, thing, *args)

    monkeypatch.setattr(things, "delete_thing", after_another)
    response = await client.delete(
        f"/api/things/{thing_id}", headers={**await csrf_headers(client), **sent}
    )
    assert response.status_code == 404
    assert_error(await response.get_json(), 404, "not_found")


@pytest.mark.parametrize("races", [1, 3])
async def test_a_replace_with_if_match_star_that_loses_a_race_replaces_the_new_version(
    pg_app: Quart, monkeypatch: pytest.MonkeyPatch, races: int
) -> None:
    """Regression (newcomer run): a second race lost in a row was a 409 "conflict" with
    the version the client sent, though it sent none."""
    client, thing_id = await raced(pg_app, monkeypatch, "update_thing", races)
    response = await client.put(
        f"/api/things/{thing_id}",
        json={"name": "Raced", "description": "mine"},
        headers={**await csrf_headers(client), "If-Match": "*"},
    )
    payload = await response.get_json()
    assert response.status_code == 200, payload
    # over theirs, at 1 + races
    assert (payload["description"], payload["version"]) == ("mine", races + 2)


@pytest.mark.parametrize("races", [1, 3])
@pytest.mark.parametrize("sent", [{}, {"If-Match": "*"}])
async def test_a_delete_naming_no_version_that_loses_a_race_still_deletes(
    pg_app: Quart, monkeypatch: pytest.MonkeyPatch, sent: dict[str, str], races: int
) -> None:
    client, thing_id = await raced(pg_app, monkeypatch, "delete_thing", races)
    response = await client.delete(
        f"/api/things/{thing_id}", headers={**await csrf_headers(client), **sent}
    )
    assert response.status_code == 204
    assert (await client.get(f"/api/things/{thing_id}")).status_code == 404


@pytest.mark.parametrize(
    ("method", "step", "sent"),
    [("PUT", "update_thing", {"If-Match": "*"}), ("DELETE", "delete_thing", {}),
     ("DELETE", "delete_thing", {"If-Match": "*"})],
)  # fmt: skip
async def test_a_write_naming_no_version_that_loses_every_try_says_so(
    pg_app: Quart,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    step: str,
    sent: dict[str, str],
) -> None:
    """Regression (review): after its last try it got "changed since the version you
    sent", naming a version it never sent."""
    client, thing_id = await raced(pg_app, monkeypatch, step, races=ANY_VERSION_TRIES)
    # No body for the delete: the test client would send `json=None` as "null".
    body_kw: dict[str, Any] = (
        {"json": {"name": "Raced", "description": "mine"}} if method == "PUT" else {}
    )
    response = await client.open(
        f"/api/things/{thing_id}", method=method, **body_kw,
        headers={**await csrf_headers(client), **sent},
    )  # fmt: skip
    body = await response.get_json()
    assert response.status_code == 409
    assert_error(body, 409, "conflict")
    assert body["message"].startswith("The thing kept changing while this request tried")
    assert body["current"]["version"] == 1 + ANY_VERSION_TRIES


@pytest.mark.parametrize(
    ("method", "step", "sent"),
    [("PUT", "update_thing", {"If-Match": "*"}), ("PUT", "update_thing", {}),
     ("DELETE", "delete_thing", {}), ("DELETE", "delete_thing", {"If-Match": "*"})],
)  # fmt: skip
async def test_a_write_whose_if_none_match_names_the_version_that_landed_gets_412(
    pg_app: Quart,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    step: str,
    sent: dict[str, str],
) -> None:
    """A write made on the condition that the thing is not at version 2, which lands
    between its read and its write, is refused as it would have been a moment later: a
    write that names no version is not tried again against the version it refuses."""
    client, thing_id = await raced(pg_app, monkeypatch, step)
    # No body for the delete: the test client would send `json=None` as "null".
    body: dict[str, Any] = {"name": "Raced", "description": "mine"}
    if not sent:
        body["version"] = 1
    body_kw: dict[str, Any] = {"json": body} if method == "PUT" else {}
    response = await client.open(
        f"/api/things/{thing_id}", method=method, **body_kw,
        headers={**await csrf_headers(client), **sent, "If-None-Match": '"2"'},
    )  # fmt: skip
    payload = await response.get_json()
    assert response.status_code == 412, payload
    assert_error(payload, 412, "precondition_failed")
    assert payload["message"] == "If-None-Match names version 2, the thing's current version."
    still = await (await client.get(f"/api/things/{thing_id}")).get_json()
    assert (still["description"], still["version"]) == ("theirs", 2)
