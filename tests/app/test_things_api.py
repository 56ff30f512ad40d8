"""The Things JSON API, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, cast
from urllib.parse import urlencode

import pytest
from markupsafe import escape
from quart import Quart
from werkzeug.datastructures import Headers

from app import create_app
from shipshape.typing import ASGIApp, Message
from tests.app.test_things_pages import OTHER_FORMS_OF_AN_ID, count, stored
from tests.conftest import Client, client_of
from tests.shipshape.conftest import http_scope


@pytest.fixture
def database_url(on_both_engines: str) -> str:
    return on_both_engines


async def csrf_headers(client: Client) -> dict[str, str]:
    response = await client.get("/api/csrf-token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return {"X-CSRF-Token": (await response.get_json())["csrf_token"]}


async def post(client: Client, body: Any, **headers: str) -> tuple[int, Any]:
    response = await client.post(
        "/api/things", json=body, headers={**await csrf_headers(client), **headers}
    )
    return response.status_code, await response.get_json()


async def new(client: Client, name: str, description: str = "") -> dict[str, Any]:
    status, body = await post(client, {"name": name, "description": description})
    assert status == 201, body
    return dict(body)


def assert_error(body: Any, status: int, code: str) -> None:
    assert isinstance(body, dict)
    assert body["error"] == status and body["code"] == code
    assert isinstance(body["message"], str) and body["message"]


async def test_crud_through_the_api(app: Quart, client: Client) -> None:
    headers = await csrf_headers(client)
    response = await client.post(
        "/api/things", json={"name": " Kettle ", "description": "Boils."}, headers=headers
    )
    assert response.status_code == 201
    thing = await response.get_json()
    assert response.headers["Location"] == f"/api/things/{thing['id']}"
    assert response.headers["ETag"] == '"1"'
    assert uuid.UUID(thing["id"])
    assert (thing["name"], thing["description"], thing["version"]) == ("Kettle", "Boils.", 1)
    assert thing["created_at"].endswith("+00:00")
    assert thing["updated_at"] == thing["created_at"]  # one instant, not two

    got = await client.get(f"/api/things/{thing['id']}")
    assert got.status_code == 200 and await got.get_json() == thing

    replaced = await client.put(
        f"/api/things/{thing['id']}",
        json={"name": "Teapot", "description": "Brews."},
        headers={**headers, "If-Match": '"1"'},
    )
    body = await replaced.get_json()
    assert replaced.status_code == 200, body
    assert (body["name"], body["version"]) == ("Teapot", 2) and replaced.headers["ETag"] == '"2"'

    replaced = await client.put(
        f"/api/things/{thing['id']}",
        json={"name": "Teapot", "description": "Brews tea.", "version": 2},
        headers=headers,
    )
    assert (await replaced.get_json())["version"] == 3

    deleted = await client.delete(f"/api/things/{thing['id']}", headers=headers)
    assert deleted.status_code == 204 and await deleted.get_data() == b""
    # Regression (found by tests/app/test_fuzz.py): the 204 said text/html and got a page's
    # headers, nonce CSP included; with no body it names no type (RFC 9110 §15.3.5) and
    # gets the API's. (The test client's response object adds a Content-Type of its own:
    # tests/app/test_fuzz.py reads the ASGI messages.)
    assert (
        deleted.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    gone = await client.get(f"/api/things/{thing['id']}")
    assert gone.status_code == 404
    assert_error(await gone.get_json(), 404, "not_found")
    assert await count(app) == 0


async def test_the_list_pages_filters_and_sorts_with_a_total(client: Client) -> None:
    for n in range(30):
        await new(client, f"Item {n:02d}")
    await new(client, "Other")
    body = await (await client.get("/api/things")).get_json()
    assert (body["total"], body["page"], body["pages"], body["per_page"]) == (31, 1, 2, 25)
    assert [item["name"] for item in body["items"]][:2] == ["Item 00", "Item 01"]
    assert len(body["items"]) == 25
    body = await (await client.get("/api/things?q=item&sort=-name&page=2")).get_json()
    assert body["total"] == 30 and [i["name"] for i in body["items"]] == [
        "Item 04", "Item 03", "Item 02", "Item 01", "Item 00"
    ]  # fmt: skip
    past = await (await client.get("/api/things?page=9")).get_json()
    assert past["items"] == [] and past["total"] == 31  # past the last page: none, not an error


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"), ("page=x", "page"), ("page=1000001", "page"), ("sort=id", "sort"),
        ("q=" + "x" * 201, "q"),
        # Regression (probe): text that is not UTF-8 was read as the filter "%FF", and a
        # control character at an end was stripped (str.strip()) where one inside is refused.
        ("q=%ff", "q"), ("q=%e2%82", "q"), ("q=k%ffettle", "q"), ("q=%1f", "q"),
        ("q=%1fkettle", "q"), ("q=kettle%1c", "q"), ("sort=%ff", "sort"), ("x=%ff", "x"),
        ("%ff=1", "query"),
    ],
)  # fmt: skip
async def test_a_bad_list_parameter_is_a_400_naming_it(
    client: Client, query: str, field: str
) -> None:
    response = await client.get(f"/api/things?{query}")
    body = await response.get_json()
    assert response.status_code == 400
    assert_error(body, 400, "invalid_query")
    assert list(body["fields"]) == [field]
    if field == "page":  # the whole rule, the cap included
        assert body["message"] == "The page must be a whole number from 1 to 1,000,000"
    if "%ff" in query or "%e2" in query:
        what = {"q": "filter", "sort": "sort"}.get(field, "query string")
        assert body["message"] == f"The {what} is not valid UTF-8 text"


async def test_the_filter_is_stripped_of_the_blanks_a_name_is(client: Client) -> None:
    """The names' rule (app.things.WHITE_SPACE), and U+FFFD sent as UTF-8 is text."""
    await new(client, "Kettle")
    await new(client, "Broken \ufffd")
    for q, expected in (("%e3%80%80kettle%09", ["Kettle"]), ("%ef%bf%bd", ["Broken \ufffd"])):
        response = await client.get(f"/api/things?q={q}")
        assert response.status_code == 200, q
        assert [item["name"] for item in (await response.get_json())["items"]] == expected


INVISIBLE = "Name must have a letter, digit, punctuation mark or symbol"
TOO_LONG_WRITTEN_OUT = "Name is too long: some of its characters stand for several"
BAD_VERSION = "Version must be a whole number from 1 to 2,147,483,647, as sent"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"name": ["Field required"]}),
        ({"name": ""}, {"name": ["Enter a name"]}),
        ({"name": "   "}, {"name": ["Enter a name"]}),
        ({"name": "x" * 65}, {"name": ["Name must be 64 characters or fewer"]}),
        ({"name": 5}, {"name": ["Input should be a valid string"]}),
        ({"name": None}, {"name": ["Input should be a valid string"]}),
        ({"name": ["a"]}, {"name": ["Input should be a valid string"]}),
        ({"name": "a\u0000b"}, {"name": ["Name contains control characters"]}),
        # Regression (API probe): str.strip() dropped these at the ends only.
        ({"name": "\u001fstripme\u001c"}, {"name": ["Name contains control characters"]}),
        ({"name": "\ud800"}, {"name": ["Name contains characters that are not valid text"]}),
        # Regression (newcomer run): a name nobody can see, or one that reorders the text
        # around it, was saved.
        ({"name": "\u200b"}, {"name": [INVISIBLE]}),
        ({"name": "\u200d\u0301"}, {"name": [INVISIBLE]}),
        ({"name": "\u3164"}, {"name": [INVISIBLE]}),  # Hangul filler: a letter, blank
        ({"name": "\u115f\u2800"}, {"name": [INVISIBLE]}),  # and blank Braille
        ({"name": "\u00ad\ufe0f\U000e0041"}, {"name": [INVISIBLE]}),
        ({"name": "abc\u202e"}, {"name": ["Name contains text-direction controls"]}),
        ({"name": "\u2066abc"}, {"name": ["Name contains text-direction controls"]}),
        # Regression (probe): the invisible marks, and Unicode's own line breaks.
        ({"name": "abc\u200e"}, {"name": ["Name contains text-direction controls"]}),
        ({"name": "\u200fabc"}, {"name": ["Name contains text-direction controls"]}),
        ({"name": "a\u061cbc"}, {"name": ["Name contains text-direction controls"]}),
        ({"name": "a\u2028b"}, {"name": ["Name contains line or paragraph separators"]}),
        ({"name": "a\u2029b"}, {"name": ["Name contains line or paragraph separators"]}),
        ({"name": "\ufdfa" * 15}, {"name": [TOO_LONG_WRITTEN_OUT]}),
        ({"name": "ok", "description": "d" * 2001},
         {"description": ["Description must be 2,000 characters or fewer"]}),
        ({"name": "ok", "description": 1}, {"description": ["Input should be a valid string"]}),
        ({"name": "ok", "colour": "red"}, {"colour": ["Unknown field"]}),
        ({"name": "ok", "id": str(uuid.uuid4())}, {"id": ["Unknown field"]}),
        ([], {"body": ["Send a JSON object"]}),
        ("name", {"body": ["Send a JSON object"]}),
        (None, {"body": ["Send a JSON object"]}),
    ],
)  # fmt: skip
async def test_invalid_bodies_are_a_422_naming_each_field(
    app: Quart, client: Client, body: Any, fields: dict[str, list[str]]
) -> None:
    status, answer = await post(client, body)
    assert status == 422, answer
    assert_error(answer, 422, "invalid")
    assert answer["fields"] == fields
    assert await count(app) == 0


@pytest.mark.parametrize(
    ("version", "message"),
    [
        *((v, BAD_VERSION) for v in (0, -1, 2**31, 10**23)),
        ("1", "Input should be a valid integer"),
        (True, "Input should be a valid integer"),
        (1.0, "Input should be a valid integer"),
    ],
)
async def test_a_version_no_thing_can_have_is_a_422_not_a_conflict(
    client: Client, version: Any, message: str
) -> None:
    """Regression (newcomer run): a version below 1 or past the column's largest was a
    409 saying the thing had changed since that version; nothing had."""
    thing = await new(client, "Kettle")
    url = f"/api/things/{thing['id']}"
    headers = await csrf_headers(client)
    replaced = await client.put(url, json={"name": "Teapot", "version": version}, headers=headers)
    answer = await replaced.get_json()
    assert replaced.status_code == 422, answer
    assert_error(answer, 422, "invalid")
    assert answer["fields"] == {"version": [message]}
    kept = await (await client.get(url)).get_json()
    assert (kept["name"], kept["version"]) == ("Kettle", 1)


@pytest.mark.parametrize(
    "name",
    ["<script>alert(1)</script>", "' OR '1'='1", "Robert'); DROP TABLE things;--", "🚢 ünï"],
)
async def test_payloads_are_stored_exactly_as_typed(app: Quart, client: Client, name: str) -> None:
    thing = await new(client, name, description=name)
    assert thing["name"] == name and thing["description"] == name
    assert [(t.name, t.description) for t in await stored(app)] == [(name, name)]
    listed = await (await client.get("/api/things?" + urlencode({"q": name}))).get_json()
    assert [item["name"] for item in listed["items"]] == [name]  # found by itself, literally
    html = await (await client.get(f"/things/{thing['id']}")).get_data(as_text=True)
    assert f'<h1 class="text-break">{escape(name)}</h1>' in html
    assert "<script>alert(1)" not in html


@pytest.mark.parametrize(
    ("first", "second"),
    [("Café", "Cafe\u0301"), ("\u00c5ngstr\u00f6m", "\u212bngstro\u0308m"),
     ("ﬁle", "FILE"), ("Straße", "STRASSE"), ("x²", "X2"),
     ("Plain", "Pla\u200bin"), ("Plain", "Plain\u00ad"), ("Plain", "P\u2060lain")],
)  # fmt: skip
async def test_names_that_read_the_same_are_one_name(
    app: Quart, client: Client, first: str, second: str
) -> None:
    """Regression (newcomer run): case folding alone kept a composed letter apart from
    the same letter with a combining accent, and the Angstrom sign from Å."""
    made = await new(client, first)
    status, body = await post(client, {"name": second})
    assert status == 409, body
    assert_error(body, 409, "name_taken")
    assert made["name"] == first  # stored as typed; only the key is normalised
    found = await (await client.get("/api/things", query_string={"q": second})).get_json()
    assert [item["id"] for item in found["items"]] == [made["id"]]


async def test_a_duplicate_name_is_a_409_naming_the_field(app: Quart, client: Client) -> None:
    await new(client, "Kettle")
    status, body = await post(client, {"name": "KETTLE"})
    assert status == 409
    assert_error(body, 409, "name_taken")
    assert list(body["fields"]) == ["name"]
    assert await count(app) == 1


async def test_versions_if_match_and_their_errors(app: Quart, client: Client) -> None:
    headers = await csrf_headers(client)
    thing = await new(client, "Kettle")
    url = f"/api/things/{thing['id']}"
    change = {"name": "Kettle", "description": "new"}

    missing = await client.put(url, json=change, headers=headers)
    assert missing.status_code == 428
    assert_error(await missing.get_json(), 428, "version_required")

    for etag, says in (
        ('"7"', "If-Match names version 7; the thing is at version 1."),
        ('"01"', 'If-Match must be an ETag this API sent, such as "1", or *.'),
        ('W/"7"', "If-Match names version 7; the thing is at version 1."),
        ('"abc"', 'If-Match must be an ETag this API sent, such as "1", or *.'),
        ("1", 'If-Match must be an ETag this API sent, such as "1", or *.'),
        ('"5", "6"', "If-Match names version 5; the thing is at version 1."),
        ('"abc", W/"7"', "If-Match names version 7; the thing is at version 1."),
        ('"1" "2"', 'If-Match must be an ETag this API sent, such as "1", or *.'),
        # Empty list elements are ignored (RFC 9110 §5.6.1.2; API probe: "9", was refused).
        ('"7",', "If-Match names version 7; the thing is at version 1."),
        (', "8", ,"7"', "If-Match names version 8; the thing is at version 1."),
    ):
        stale = await client.put(url, json=change, headers={**headers, "If-Match": etag})
        body = await stale.get_json()
        assert stale.status_code == 412, etag
        assert_error(body, 412, "precondition_failed")
        assert body["message"] == says
        assert body["current"]["version"] == 1

    stale = await client.put(url, json={**change, "version": 5}, headers=headers)
    body = await stale.get_json()
    assert stale.status_code == 409
    assert_error(body, 409, "conflict")
    assert body["current"] == thing  # the newer values, so the caller can merge

    anyway = await client.put(url, json=change, headers={**headers, "If-Match": "*"})
    assert anyway.status_code == 200 and (await anyway.get_json())["version"] == 2

    refused = await client.delete(url, headers={**headers, "If-Match": '"1"'})
    assert refused.status_code == 412
    assert [(t.description, t.version) for t in await stored(app)] == [("new", 2)]
    # A list matches when any of its tags does (RFC 9110 §13.1.1).
    listed = {**headers, "If-Match": '"1", W/"2", "9",'}  # the trailing comma is no element
    assert (await client.delete(url, headers=listed)).status_code == 204


async def test_conditional_headers_on_two_lines_read_as_one_list(client: Client) -> None:
    """Regression (review): the API read the first line only, as Werkzeug's
    ``headers.get`` does, while the ASGI layers join repeated lines (RFC 9110 §5.3)."""
    thing = await new(client, "Teapot")
    url = f"/api/things/{thing['id']}"
    unchanged = Headers([("If-None-Match", '"7"'), ("If-None-Match", '"1"')])
    assert (await client.get(url, headers=unchanged)).status_code == 304
    matching = Headers(
        [*(await csrf_headers(client)).items(), ("If-Match", '"7"'), ("If-Match", '"1"')]
    )
    assert (await client.delete(url, headers=matching)).status_code == 204


async def assert_not_found_by_every_method(client: Client, url: str) -> None:
    """GET, PUT and DELETE of ``url`` are each the API's 404."""
    headers = await csrf_headers(client)
    for response in (
        await client.get(url),
        await client.put(url, json={"name": "Teapot", "version": 1}, headers=headers),
        await client.delete(url, headers=headers),
    ):
        assert response.status_code == 404
        assert_error(await response.get_json(), 404, "not_found")


@pytest.mark.parametrize("thing_id", ["nope", str(uuid.uuid4()), "1"])
async def test_unknown_ids_are_a_404_for_every_method(client: Client, thing_id: str) -> None:
    await assert_not_found_by_every_method(client, f"/api/things/{thing_id}")


async def test_a_body_that_is_not_json_is_a_415_or_400(app: Quart, client: Client) -> None:
    headers = await csrf_headers(client)
    form = await client.post("/api/things", form={"name": "x"}, headers=headers)
    assert form.status_code == 415
    assert_error(await form.get_json(), 415, "unsupported_media_type")
    for raw in (b"{not json", b'{"name": "\xff\xfe"}', b"\x00"):
        broken = await client.post(
            "/api/things",
            data=raw,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert broken.status_code == 400, raw
        assert_error(await broken.get_json(), 400, "bad_request")
    deep = '{"name": ' + "[" * 20_000 + "]" * 20_000 + "}"  # 40 kB: under the cap
    nested = await client.post(
        "/api/things", data=deep, headers={**headers, "Content-Type": "application/json"}
    )
    assert nested.status_code == 400
    assert_error(await nested.get_json(), 400, "bad_request")
    assert await count(app) == 0


async def test_a_body_over_the_cap_is_a_413(app: Quart, client: Client) -> None:
    big = json.dumps({"name": "x", "description": "d" * 70_000})
    response = await client.post(
        "/api/things",
        data=big,
        headers={**await csrf_headers(client), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert_error(await response.get_json(), 413, "request_entity_too_large")
    assert await count(app) == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-CSRF-Token": "forged"}, {"Origin": "https://evil.example"},
     {"Sec-Fetch-Site": "cross-site"}],
)  # fmt: skip
async def test_writes_without_a_valid_csrf_token_are_refused(
    app: Quart, client: Client, headers: dict[str, str]
) -> None:
    thing = await new(client, "Kettle")
    if "Origin" in headers or "Sec-Fetch-Site" in headers:
        headers = {**headers, **await csrf_headers(client)}  # a good token does not help
    url = f"/api/things/{thing['id']}"
    for response in (
        await client.post("/api/things", json={"name": "New"}, headers=headers),
        await client.put(url, json={"name": "New", "version": 1}, headers=headers),
        await client.delete(url, headers=headers),
    ):
        assert response.status_code == 400
        assert_error(await response.get_json(), 400, "csrf_failed")
    assert [(t.name, t.version) for t in await stored(app)] == [("Kettle", 1)]


async def test_another_sessions_token_is_refused(app: Quart, client: Client) -> None:
    stranger = client_of(app)
    status, body = await post(client, {"name": "x"}, **await csrf_headers(stranger))
    assert status == 400 and body["code"] == "csrf_failed"


async def test_the_api_is_rate_limited_by_default(database_url: str) -> None:
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url})
    async with app.test_app():
        client = client_of(app)
        statuses = [(await client.get("/api/things")).status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and statuses[-1] == 429
        body = await (await client.get("/api/things")).get_json()
        assert_error(body, 429, "rate_limited")


async def test_openapi_describes_the_api_only(client: Client) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert spec["info"]["title"] == "Shipshape Things API"
    # How to write: Swagger UI shows this above the routes, and generated clients' docs too.
    description = spec["info"]["description"]
    assert "`X-CSRF-Token`" in description and "`GET /api/csrf-token`" in description
    assert set(spec["paths"]) == {"/api/csrf-token", "/api/things", "/api/things/{thing_id}"}
    operations = spec["paths"]["/api/things/{thing_id}"]
    assert {"get", "put", "delete"} <= set(operations)
    put = operations["put"]
    assert {"200", "404", "409", "412", "422", "428"} <= set(put["responses"])
    assert "requestBody" in put


async def test_openapi_states_every_answer_and_precondition(client: Client) -> None:
    """Regression: the document left out DELETE's 204, the If-Match header, the fields'
    lengths and the errors any write may get, and showed reST backticks in Swagger UI."""
    spec = await (await client.get("/openapi.json")).get_json()
    one = spec["paths"]["/api/things/{thing_id}"]
    writes = [spec["paths"]["/api/things"]["post"], one["put"], one["delete"]]
    assert one["delete"]["responses"]["204"] == {"description": "Deleted."}
    assert "content" not in one["get"]["responses"]["304"]
    for operation in writes[:2]:  # writes with a body
        assert {"400", "413", "415", "429", "503"} <= set(operation["responses"])
    assert {"400", "429", "503"} <= set(one["delete"]["responses"])
    for path in spec["paths"].values():
        for operation in path.values():
            # Refusals made before any view (API probe: undocumented, they broke the schema).
            assert {"400", "406", "415", "429", "503"} <= set(operation["responses"])
    assert not {"413", "422"} & set(one["delete"]["responses"]), "DELETE reads no body"
    for operation in (one["get"], one["put"], one["delete"]):
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        # A header is absent or has a value: documented as a string, never null.
        assert headers["if-match"]["schema"]["type"] == "string"
        assert headers["if-match"]["schema"]["minLength"] == 1
    for operation in (one["get"], one["put"], one["delete"]):
        assert "if-none-match" in {p["name"] for p in operation["parameters"]}
    body = spec["paths"]["/api/things"]["post"]["requestBody"]["content"]["application/json"]
    fields = body["schema"]["properties"]
    assert (fields["name"]["minLength"], fields["name"]["maxLength"]) == (1, 64)
    assert fields["description"]["maxLength"] == 2000
    text = json.dumps(spec)
    assert "``" not in text, "reST markup, which Swagger UI shows as it is"


async def test_openapi_states_the_headers_bodies_and_limits_the_api_has(client: Client) -> None:
    """Regression (newcomer run): no ETag or Location on the answers, request bodies not
    required (an empty one is a 400), and no bounds on the list's page and filter."""
    spec = await (await client.get("/openapi.json")).get_json()
    create = spec["paths"]["/api/things"]["post"]
    one = spec["paths"]["/api/things/{thing_id}"]
    assert set(create["responses"]["201"]["headers"]) == {"etag", "location"}
    for operation in (one["get"], one["put"]):
        assert set(operation["responses"]["200"]["headers"]) == {"etag"}
        assert list(operation["responses"]["200"]["content"]) == ["application/json"]
    assert create["requestBody"]["required"] is True and one["put"]["requestBody"]["required"]
    query = {p["name"]: p["schema"]["anyOf"][0] for p in spec["paths"]["/api/things"]["get"]
             ["parameters"]}  # fmt: skip
    assert (query["page"]["minimum"], query["page"]["maximum"]) == (1, 1_000_000)
    assert query["q"]["maxLength"] == 200


async def test_only_names_refuse_line_separators_and_direction_marks(client: Client) -> None:
    """A description is multi-line and shown isolated (docs/things.md), so it keeps them;
    at a name's ends a separator is a blank, stripped as a line feed is."""
    text = "Line one\u2028line two\u2029\u200eleft\u200f, \u061cArabic"
    thing = await new(client, "\u2028Kettle\u2029", text)
    assert (thing["name"], thing["description"]) == ("Kettle", text)


async def test_a_name_of_the_documented_length_with_spaces_around_is_accepted(
    client: Client,
) -> None:
    """The lengths are documented, not enforced before stripping: the rules are the app's."""
    status, body = await post(client, {"name": "  " + "n" * 64 + "  "})
    assert status == 201 and body["name"] == "n" * 64


def test_the_sorts_have_one_list() -> None:
    """The API's schema spells the sorts out for OpenAPI; they must be app.things' own."""
    from typing import get_args

    from app.blueprints.api import ListArgs
    from app.things import SORT_LABELS, SORTS

    [literal, _none] = get_args(ListArgs.model_fields["sort"].annotation)
    assert set(get_args(literal)) == set(SORTS) == set(SORT_LABELS)


async def test_the_etag_of_a_compressed_response_writes(client: Client) -> None:
    """The compression layer weakens a compressed response's ETag (``W/"1"``); it still
    names the thing's version, so a client echoing it back can write and delete."""
    headers = await csrf_headers(client)
    thing = await new(client, "Kettle", "x" * 1500)  # long enough to be compressed
    url = f"/api/things/{thing['id']}"
    got = await client.get(url, headers={"Accept-Encoding": "br"})
    assert got.headers["Content-Encoding"] == "br"
    assert got.headers["ETag"] == 'W/"1"'
    change = {"name": "Kettle", "description": "y" * 1500}
    replaced = await client.put(url, json=change, headers={**headers, "If-Match": 'W/"1"'})
    assert replaced.status_code == 200
    assert (await replaced.get_json())["version"] == 2
    stale = await client.delete(url, headers={**headers, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    deleted = await client.delete(url, headers={**headers, "If-Match": 'W/"2"'})
    assert deleted.status_code == 204
    assert (await client.get(url)).status_code == 404


@pytest.mark.parametrize("etag", ['"1"', "*"])
async def test_if_match_and_a_body_version_that_differ_are_refused(
    app: Quart, client: Client, etag: str
) -> None:
    """Two preconditions that disagree: neither silently wins, and nothing is saved."""
    headers = await csrf_headers(client)
    thing = await new(client, "Kettle")
    url = f"/api/things/{thing['id']}"
    change = {"name": "Kettle", "description": "new", "version": 2}
    refused = await client.put(url, json=change, headers={**headers, "If-Match": etag})
    body = await refused.get_json()
    assert refused.status_code == 400
    assert_error(body, 400, "versions_differ")
    assert body["message"] == (
        f"If-Match ({etag}) and the body's version (2) name different versions; "
        "send one of them, or the same in both."
        if etag != "*"
        else "If-Match: * replaces any version; it cannot be sent with a version in the body."
    )
    assert [(t.description, t.version) for t in await stored(app)] == [("", 1)]
    agreed = await client.put(
        url, json={**change, "version": 1}, headers={**headers, "If-Match": '"1"'}
    )
    assert agreed.status_code == 200


async def test_conditional_gets(client: Client) -> None:
    """``If-None-Match`` with the current ETag (either form) is 304; ``If-Match`` with
    another version is 412, as for a write."""
    thing = await new(client, "Kettle")
    url = f"/api/things/{thing['id']}"
    for etag, sent in (('"1"', '"1"'), ('W/"1"', 'W/"1"'), ('"0", "1"', '"1"'), ("*", '"1"')):
        unchanged = await client.get(url, headers={"If-None-Match": etag, "Accept-Encoding": "br"})
        assert unchanged.status_code == 304, etag
        # What the client's 200 carried (RFC 9110 §15.4.5): strong as sent, weak when
        # compressed (regression: a client holding "1" was sent W/"1"), and Vary.
        assert unchanged.headers["ETag"] == sent, etag
        assert unchanged.headers.getlist("Vary") == ["Accept-Encoding"]
        assert await unchanged.get_data() == b""
        # No type, so the API's headers (the test client adds a Content-Type of its own).
        csp = unchanged.headers["Content-Security-Policy"]
        assert csp == "default-src 'none'; frame-ancestors 'none'"
    changed = await client.get(url, headers={"If-None-Match": '"2"'})
    assert changed.status_code == 200 and (await changed.get_json())["version"] == 1
    other = await client.get(url, headers={"If-Match": '"2"'})
    assert other.status_code == 412
    assert_error(await other.get_json(), 412, "precondition_failed")
    assert (await client.get(url, headers={"If-Match": '"1"'})).status_code == 200


async def test_a_delete_with_a_body_is_refused_and_deletes_nothing(
    app: Quart, client: Client
) -> None:
    """Regression (hostile-input probe): ``{"version": 99}`` in a delete's body was ignored,
    and the thing deleted at whichever version was current."""
    thing = await new(client, "Kettle")
    url = f"/api/things/{thing['id']}"
    headers = await csrf_headers(client)
    for body in ({"version": 99}, {}):
        refused = await client.delete(url, json=body, headers=headers)
        assert refused.status_code == 400
        assert_error(await refused.get_json(), 400, "bad_request")
        assert "If-Match" in (await refused.get_json())["message"]
    assert [t.version for t in await stored(app)] == [1]
    assert (await client.delete(url, headers=headers)).status_code == 204


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize(
    ("etag", "says"),
    [
        ("*", "If-None-Match: * refuses any version; the thing is at version 1."),
        ('"1"', "If-None-Match names version 1, the thing's current version."),
        ('W/"1"', "If-None-Match names version 1, the thing's current version."),
        ('"7", "1"', "If-None-Match names version 1, the thing's current version."),
    ],
)
async def test_if_none_match_naming_the_current_version_refuses_a_write(
    app: Quart, client: Client, method: str, etag: str, says: str
) -> None:
    """Regression (probe): PUT and DELETE ignored If-None-Match; for a method other than
    GET and HEAD, a match is 412 (RFC 9110 §13.1.2), and nothing changes."""
    headers = await csrf_headers(client)
    thing = await new(client, "Kettle")
    url = f"/api/things/{thing['id']}"
    # No body for the delete: the test client would send `json=None` as "null".
    body: dict[str, Any] = {"json": {"name": "Teapot", "version": 1}} if method == "PUT" else {}
    refused = await client.open(
        url, method=method, headers={**headers, "If-None-Match": etag}, **body
    )
    answer = await refused.get_json()
    assert refused.status_code == 412, answer
    assert_error(answer, 412, "precondition_failed")
    assert (answer["message"], answer["current"]) == (says, thing)
    assert [(t.name, t.version) for t in await stored(app)] == [("Kettle", 1)]
    # If-Match is evaluated first (RFC 9110 §13.2.2): its 412 is the one given.
    both = {**headers, "If-Match": '"5"', "If-None-Match": etag}
    first = await (await client.open(url, method=method, headers=both, **body)).get_json()
    assert first["message"] == "If-Match names version 5; the thing is at version 1."
    # Naming only other versions, the write goes ahead.
    other = {**headers, "If-None-Match": '"2", W/"3"'}
    allowed = await client.open(url, method=method, headers=other, **body)
    assert allowed.status_code == (200 if method == "PUT" else 204)
    assert [(t.name, t.version) for t in await stored(app)] == (
        [("Teapot", 2)] if method == "PUT" else []
    )


@pytest.mark.parametrize(
    ("etag", "matches"),
    [
        ('"1"', True), ('W/"1"', True), ('"7", "1"', True), ('"1",', True), (' "1" ', True),
        ("*", True), ('"7"', False), ('"01"', False), ('""', False),
        # Regression (probe): If-None-Match took an unquoted tag for a quoted one
        # (Werkzeug's parse_etags), where If-Match took it for no tag at all.
        ("1", False), ("W/1", False), ("'1'", False), ('"1" "2"', False), ('"1";', False),
        # Each element of a list on its own (shipshape.etags): one that is no tag
        # matches nothing, and does not hide a tag that names the version.
        ('"1", x', True), ('x, W/"1"', True), ('"7", x', False),
    ],
)  # fmt: skip
async def test_if_match_and_if_none_match_read_tags_alike(
    client: Client, etag: str, matches: bool
) -> None:
    """One reading of entity tags for both headers: a value matches the current version
    in both or in neither (If-Match then gives 200, If-None-Match 304)."""
    thing = await new(client, "Kettle")
    url = f"/api/things/{thing['id']}"
    matched = await client.get(url, headers={"If-Match": etag})
    none_matched = await client.get(url, headers={"If-None-Match": etag})
    assert (matched.status_code, none_matched.status_code) == (
        (200, 304) if matches else (412, 200)
    )


@pytest.mark.parametrize("other", OTHER_FORMS_OF_AN_ID)
async def test_a_thing_has_one_address_in_the_api(app: Quart, client: Client, other: Any) -> None:
    """Regression (probe): ``uuid.UUID`` read braces, capitals, ``urn:uuid:`` and ids with
    no hyphens, so one thing had many URLs; only the form the API writes names it."""
    thing = await new(client, "Kettle")
    await assert_not_found_by_every_method(client, f"/api/things/{other(thing['id'])}")
    assert [(t.name, t.version) for t in await stored(app)] == [("Kettle", 1)]
    assert (await client.get(f"/api/things/{thing['id']}")).status_code == 200


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/api/things", {"GET", "HEAD", "POST", "OPTIONS"}),
     ("/api/things/{id}", {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})],
)  # fmt: skip
async def test_options_is_a_204_with_allow_and_no_type(
    app: Quart, client: Client, path: str, allowed: set[str]
) -> None:
    """Regression (probe): Quart's own answer to OPTIONS was an empty 200 ``text/html``.
    Read as the server gets it: the test client's response adds a type of its own."""
    thing = await new(client, "Kettle")
    sent: list[Message] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # no more: the client waits for the answer
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("OPTIONS", path.format(id=thing["id"]), [])
    async with asyncio.timeout(10):
        await cast(ASGIApp, app.asgi_app)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = dict(start["headers"])
    assert start["status"] == 204
    assert {m.strip() for m in headers[b"allow"].decode().split(",")} == allowed
    assert b"content-type" not in headers and b"content-length" not in headers
    assert b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body") == b""
