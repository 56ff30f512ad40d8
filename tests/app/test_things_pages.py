"""The Things pages, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from quart import Quart
from sqlalchemy import func, select

from app import things
from app.models import Thing
from shipshape.database import current_database
from tests.conftest import Client, client_of, csrf_from

XSS = '<script>alert("x")</script>'
SUMMARY_LINK_RE = re.compile(r'<li><a class="alert-link" href="#(\w+)">([^<]+)</a></li>')


@pytest.fixture
def database_url(on_both_engines: str) -> str:
    return on_both_engines


async def count(app: Quart) -> int:
    async with app.test_request_context("/"):
        session = await current_database().session()
        return int(await session.scalar(select(func.count()).select_from(Thing)) or 0)


async def stored(app: Quart) -> list[Thing]:
    async with app.test_request_context("/"):
        session = await current_database().session()
        return list(await session.scalars(select(Thing).order_by(Thing.name_key)))


async def token(client: Client, path: str = "/things/new") -> str:
    return csrf_from(await (await client.get(path)).get_data(as_text=True))


async def create(client: Client, name: str, description: str = "") -> str:
    """Add a thing through the form; its id."""
    response = await client.post(
        "/things/new",
        form={"name": name, "description": description, "csrf_token": await token(client)},
    )
    assert response.status_code == 303, await response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith("/things/")
    return location.removeprefix("/things/")


async def page_text(client: Client, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, path
    return await response.get_data(as_text=True)


async def test_the_navbar_links_to_things(client: Client) -> None:
    html = await page_text(client, "/")
    assert '<a class="nav-link" href="/things/">Things</a>' in html
    html = await page_text(client, "/things/new")
    assert 'href="/things/" aria-current="true">Things</a>' in html


async def test_create_view_edit_and_delete_through_the_forms(app: Quart, client: Client) -> None:
    thing_id = await create(client, "  Kettle  ", "Boils water.\nQuickly.")
    html = await page_text(client, f"/things/{thing_id}")
    assert '<h1 class="text-break">Kettle</h1>' in html  # stripped
    assert "Boils water.\nQuickly." in html
    assert "“Kettle” was added." in html  # the flash, on the page redirected to
    [thing] = await stored(app)
    assert (thing.name, thing.version) == ("Kettle", 1)

    edit = await page_text(client, f"/things/{thing_id}/edit")
    assert 'value="Kettle"' in edit and 'name="version" type="hidden" value="1"' in edit
    response = await client.post(
        f"/things/{thing_id}/edit",
        form={"name": "Teapot", "description": "", "version": "1", "csrf_token": csrf_from(edit)},
    )
    assert response.status_code == 303
    assert "“Teapot” was saved." in await page_text(client, f"/things/{thing_id}")
    [thing] = await stored(app)
    assert (thing.name, thing.description, thing.version) == ("Teapot", "", 2)
    assert thing.updated_at > thing.created_at

    confirm = await page_text(client, f"/things/{thing_id}/delete")
    assert "Delete “Teapot”?" in confirm and await count(app) == 1  # a GET deletes nothing
    response = await client.post(
        f"/things/{thing_id}/delete", form={"version": "2", "csrf_token": csrf_from(confirm)}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/things/"
    assert "“Teapot” was deleted." in await page_text(client, "/things/")
    assert await count(app) == 0
    assert (await client.get(f"/things/{thing_id}")).status_code == 404


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": ""}, "name", "Enter a name"),
        ({"name": "   "}, "name", "Enter a name"),
        ({}, "name", "Enter a name"),
        ({"name": "x" * 65}, "name", "Name must be 64 characters or fewer"),
        ({"name": "a\x00b"}, "name", "Name contains control characters"),
        ({"name": "a\x1bb"}, "name", "Name contains control characters"),
        ({"name": "a\tb"}, "name", "Name contains control characters"),
        ({"name": "a\u2028b"}, "name", "Name contains line or paragraph separators"),
        ({"name": "abc\u200f"}, "name", "Name contains text-direction controls"),
        ({"name": "ok", "description": "d" * 2001}, "description",
         "Description must be 2,000 characters or fewer"),
        ({"name": "ok", "description": "nul\x00"}, "description",
         "Description contains control characters"),
    ],
)  # fmt: skip
async def test_invalid_input_re_renders_the_form_and_saves_nothing(
    app: Quart, client: Client, form: dict[str, str], field: str, message: str
) -> None:
    response = await client.post("/things/new", form={**form, "csrf_token": await token(client)})
    html = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<title>Error: Add a thing · Shipshape</title>" in html
    assert SUMMARY_LINK_RE.findall(html) == [(field, message)]
    assert f'id="{field}-error">{message}</div>' in html
    assert 'aria-invalid="true"' in html
    assert await count(app) == 0


@pytest.mark.parametrize(
    "name",
    [b"bad%FF%FEutf", b"%ED%A0%80", b"bad\xff\xfeutf", b"caf%C3"],
    ids=["escaped-ff", "escaped-surrogate", "raw-bytes", "cut-sequence"],
)
async def test_form_text_that_is_not_utf8_is_a_400_and_saves_nothing(
    app: Quart, client: Client, name: bytes
) -> None:
    """Regression: ``%FF`` was saved as U+FFFD without a word, and raw bytes that are not
    UTF-8 emptied the form, which the CSRF check then called an expired form."""
    body = b"csrf_token=" + (await token(client)).encode() + b"&name=" + name
    response = await client.post(
        "/things/new",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    html = await response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The form&#39;s text is not valid UTF-8" in html
    assert "expired" not in html
    assert await count(app) == 0
    fine = await client.post(
        "/things/new",
        data=b"csrf_token=" + (await token(client)).encode() + b"&name=caf%C3%A9",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert fine.status_code == 303
    assert [thing.name for thing in await stored(app)] == ["café"]


def multipart(fields: list[tuple[str, bytes, str | None]]) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields, each with its part's Content-Type."""
    parts = []
    for name, value, content_type in fields:
        head = f'--b0undary\r\nContent-Disposition: form-data; name="{name}"\r\n'
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        parts.append(head.encode() + b"\r\n" + value + b"\r\n")
    return b"".join(parts) + b"--b0undary--\r\n", "multipart/form-data; boundary=b0undary"


@pytest.mark.parametrize(
    ("value", "content_type", "status"),
    [
        (b"bad\xff\xfeutf", None, 400),  # Quart saved it as two U+FFFD
        (b"caf\xc3", "text/plain; charset=utf-8", 400),
        (b"caf\xe9", "text/plain; charset=ascii", 400),
        (b"caf\xe9", "text/plain; charset=iso-8859-1", 303),  # what its part says it is
        (b"caf\xc3\xa9", None, 303),
    ],
)
async def test_multipart_form_text_is_decoded_strictly(
    app: Quart, client: Client, value: bytes, content_type: str | None, status: int
) -> None:
    body, form_type = multipart(
        [("csrf_token", (await token(client)).encode(), None), ("name", value, content_type)]
    )
    response = await client.post("/things/new", data=body, headers={"Content-Type": form_type})
    assert response.status_code == status
    if status == 400:
        assert "The form&#39;s text is not valid UTF-8" in await response.get_data(as_text=True)
        assert await count(app) == 0
    else:
        assert [thing.name for thing in await stored(app)] == ["café"]


async def test_a_multipart_field_name_that_is_not_utf8_is_a_400(app: Quart, client: Client) -> None:
    """Quart read it with errors="replace" too (then an empty form: "The form expired")."""
    body, form_type = multipart([("csrf_token", (await token(client)).encode(), None)])
    body = body.replace(
        b"--b0undary--",
        b'--b0undary\r\nContent-Disposition: form-data; name="n\xffme"\r\n\r\nx\r\n--b0undary--',
    )
    response = await client.post("/things/new", data=body, headers={"Content-Type": form_type})
    assert response.status_code == 400
    assert "not valid UTF-8" in await response.get_data(as_text=True)
    assert await count(app) == 0


async def test_the_limits_themselves_are_accepted_and_stored_as_typed(
    app: Quart, client: Client
) -> None:
    await create(client, "x" * 64, "d" * 2000)
    await create(client, "Ünïcödé 🚢", "line one\nline two\ttabbed  ")
    # A browser's CR LF is the one line break typed (regression, PostgreSQL probe: each
    # counted twice, so 1,999 characters as the box showed them were refused as 2,998).
    await create(client, "Lines", "x\r\n" * 999 + "y")
    things = {thing.name: thing.description for thing in await stored(app)}
    assert things == {
        "x" * 64: "d" * 2000,
        "Ünïcödé 🚢": "line one\nline two\ttabbed  ",
        "Lines": "x\n" * 999 + "y",
    }


@pytest.mark.parametrize("duplicate", ["Kettle", "kettle", "  KETTLE "])
async def test_a_duplicate_name_is_a_field_error(
    app: Quart, client: Client, duplicate: str
) -> None:
    await create(client, "Kettle")
    response = await client.post(
        "/things/new", form={"name": duplicate, "csrf_token": await token(client)}
    )
    html = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert SUMMARY_LINK_RE.findall(html) == [
        ("name", "A thing with this name already exists. Choose another name.")
    ]
    assert await count(app) == 1


async def test_the_list_table_says_what_it_lists(client: Client) -> None:
    """Regression (accessibility audit, WCAG 1.3.1): the table had no caption."""
    await create(client, "Kettle")
    html = await page_text(client, "/things/?sort=-created")
    assert '<caption class="visually-hidden">Things, newest first</caption>' in html


async def test_a_taken_name_is_reported_with_the_other_fields_errors(
    app: Quart, client: Client
) -> None:
    """Every error at once: the taken name was found only once the rest was fixed."""
    await create(client, "Kettle")
    other = await create(client, "Teapot")
    too_long = "d" * 2001
    response = await client.post(
        "/things/new",
        form={"name": " kettle ", "description": too_long, "csrf_token": await token(client)},
    )
    assert response.status_code == 422
    assert SUMMARY_LINK_RE.findall(await response.get_data(as_text=True)) == [
        ("name", "A thing with this name already exists. Choose another name."),
        ("description", "Description must be 2,000 characters or fewer"),
    ]
    edit = await page_text(client, f"/things/{other}/edit")
    for name, errors in [
        ("KETTLE", ["name", "description"]),
        ("Teapot", ["description"]),  # its own name is not taken by itself
    ]:
        response = await client.post(
            f"/things/{other}/edit",
            form={
                "name": name,
                "description": too_long,
                "version": "1",
                "csrf_token": csrf_from(edit),
            },
        )
        assert response.status_code == 422
        html = await response.get_data(as_text=True)
        assert [field for field, _ in SUMMARY_LINK_RE.findall(html)] == errors
    assert await count(app) == 2


async def test_names_are_the_same_regardless_of_case_beyond_ascii(client: Client) -> None:
    await create(client, "Straße")
    response = await client.post(
        "/things/new", form={"name": "STRASSE", "csrf_token": await token(client)}
    )
    assert "already exists" in await response.get_data(as_text=True)


async def test_renaming_onto_another_name_is_a_field_error(app: Quart, client: Client) -> None:
    await create(client, "Kettle")
    other = await create(client, "Teapot")
    edit = await page_text(client, f"/things/{other}/edit")
    response = await client.post(
        f"/things/{other}/edit",
        form={"name": "KETTLE", "version": "1", "csrf_token": csrf_from(edit)},
    )
    assert "already exists" in await response.get_data(as_text=True)
    assert [t.name for t in await stored(app)] == ["Kettle", "Teapot"]


async def test_an_edit_against_a_stale_version_shows_the_newer_values(
    app: Quart, client: Client
) -> None:
    thing_id = await create(client, "Kettle", "original")
    mine = await page_text(client, f"/things/{thing_id}/edit")  # I open the form at version 1
    theirs = await page_text(client, f"/things/{thing_id}/edit")
    response = await client.post(  # someone else saves first
        f"/things/{thing_id}/edit",
        form={"name": "Kettle", "description": "their <b>words</b>", "version": "1",
              "csrf_token": csrf_from(theirs)},
    )  # fmt: skip
    assert response.status_code == 303
    response = await client.post(
        f"/things/{thing_id}/edit",
        form={"name": "Kettle", "description": "my words", "version": "1",
              "csrf_token": csrf_from(mine)},
    )  # fmt: skip
    html = await response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Someone else changed this thing while you were editing it" in html
    newer = (
        '<dd class="text-break pre-wrap" data-newer-description>their &lt;b&gt;words&lt;/b&gt;</dd>'
    )
    assert newer in html
    assert "my words</textarea>" in html  # what I typed is still in the form
    assert 'name="version" type="hidden" value="2"' in html  # saving again replaces theirs
    [thing] = await stored(app)
    assert (thing.description, thing.version) == ("their <b>words</b>", 2)  # theirs is kept

    response = await client.post(
        f"/things/{thing_id}/edit",
        form={"name": "Kettle", "description": "my words", "version": "2",
              "csrf_token": csrf_from(html)},
    )  # fmt: skip
    assert response.status_code == 303
    [thing] = await stored(app)
    assert (thing.description, thing.version) == ("my words", 3)


async def test_a_delete_against_a_stale_version_deletes_nothing(app: Quart, client: Client) -> None:
    thing_id = await create(client, "Kettle")
    confirm = await page_text(client, f"/things/{thing_id}/delete")
    edit = await page_text(client, f"/things/{thing_id}/edit")
    await client.post(
        f"/things/{thing_id}/edit",
        form={"name": "Kettle 2", "version": "1", "csrf_token": csrf_from(edit)},
    )
    response = await client.post(
        f"/things/{thing_id}/delete", form={"version": "1", "csrf_token": csrf_from(confirm)}
    )
    html = await response.get_data(as_text=True)
    assert response.status_code == 409
    assert "so it was not deleted" in html and "Delete “Kettle 2”?" in html
    assert "<title>Error: Delete “Kettle 2”" in html  # as a stale edit's title says
    assert await count(app) == 1


# Regression (probe): "01" was read as version 1; "0" was sent as a version, and lost.
@pytest.mark.parametrize(
    "version", ["", "abc", "-1", "9" * 12, "01", "001", "0", "+1", " 1", "1 ", "\u0661"]
)
async def test_a_tampered_version_is_a_400(app: Quart, client: Client, version: str) -> None:
    thing_id = await create(client, "Kettle")
    edit = await page_text(client, f"/things/{thing_id}/edit")
    for path in (f"/things/{thing_id}/edit", f"/things/{thing_id}/delete"):
        response = await client.post(
            path, form={"name": "New", "version": version, "csrf_token": csrf_from(edit)}
        )
        assert response.status_code == 400
        assert "Reload it and try again" in await response.get_data(as_text=True)
    assert [(t.name, t.version) for t in await stored(app)] == [("Kettle", 1)]


@pytest.mark.parametrize("path", ["/things/nope", f"/things/{uuid.uuid4()}", "/things/1/edit"])
async def test_an_unknown_thing_is_a_404(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "There is no such thing" in await response.get_data(as_text=True)


#: Forms of a thing's id that ``uuid.UUID`` reads and the app never writes.
OTHER_FORMS_OF_AN_ID = [
    pytest.param(str.upper, id="upper"),
    pytest.param(lambda canonical: f"{{{canonical}}}", id="braces"),
    pytest.param(lambda canonical: f"urn:uuid:{canonical}", id="urn"),
    pytest.param(lambda canonical: canonical.replace("-", ""), id="no-hyphens"),
    pytest.param(lambda canonical: f"{canonical[:8]}{canonical[9]}-{canonical[10:]}",
                 id="hyphen-moved"),
]  # fmt: skip


@pytest.mark.parametrize("other", OTHER_FORMS_OF_AN_ID)
async def test_a_thing_has_one_address(app: Quart, client: Client, other: Any) -> None:
    """Regression (probe): braces, capitals, a ``urn:uuid:`` prefix and ids with no hyphens
    named the thing too, many URLs for one page; now each is the 404 page."""
    thing_id = await create(client, "Kettle")
    assert uuid.UUID(thing_id) and other(thing_id) != thing_id
    for path in ("/things/{}", "/things/{}/edit", "/things/{}/delete"):
        response = await client.get(path.format(other(thing_id)))
        assert response.status_code == 404, path
        assert response.content_type.startswith("text/html")
        assert "There is no such thing" in await response.get_data(as_text=True)
        assert (await client.get(path.format(thing_id))).status_code == 200
    edit = await page_text(client, f"/things/{thing_id}/edit")
    for path in ("/things/{}/edit", "/things/{}/delete"):
        form = {"name": "Teapot", "version": "1", "csrf_token": csrf_from(edit)}
        response = await client.post(path.format(other(thing_id)), form=form)
        assert response.status_code == 404, path
    assert [(t.name, t.version) for t in await stored(app)] == [("Kettle", 1)]


async def test_user_text_is_escaped_everywhere(app: Quart, client: Client) -> None:
    thing_id = await create(client, XSS, XSS)
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    pages = {
        "flash and detail": await page_text(client, f"/things/{thing_id}"),
        "list": await page_text(client, "/things/"),
        "edit": await page_text(client, f"/things/{thing_id}/edit"),
        "delete": await page_text(client, f"/things/{thing_id}/delete"),
        "filtered list": await page_text(client, "/things/?q=%3Cscript%3E"),
    }
    for where, html in pages.items():
        assert "<script>alert" not in html, where
        assert escaped in html, where
    assert f"“{escaped}” was added." in pages["flash and detail"]


async def test_a_head_of_the_csv_reads_no_rows(app: Quart, client: Client) -> None:
    await create(client, "one")
    read: list[int] = []
    csv_rows = things.csv_rows

    def counting(rows: Any) -> bytes:
        read.append(len(rows))
        return csv_rows(rows)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(things, "csv_rows", counting)
        head = await client.head("/things/download?sort=name")
        got = await client.get("/things/download?sort=name")
    assert (head.status_code, got.status_code) == (200, 200)
    for name in ("Content-Type", "Content-Disposition", "Content-Security-Policy"):
        assert head.headers[name] == got.headers[name]
    assert read == [1]  # the GET's one row; the HEAD asked the database for none


async def test_csv_keeps_filter_and_sort_and_neutralises_formulas(
    app: Quart, client: Client
) -> None:
    names = ["=SUM(A1)", "+1", "-2", "@cmd", "\tTab", "plain", "cmd|' /C calc'!A0"]
    for name in names:
        await create(client, name, description=name if name != "plain" else "=1+1")
    await create(client, "tabbed", description="\t=tab")
    await create(client, "returned", description="\r=cr")
    # After blanks, characters that show nothing, or as a full-width sign (README audit).
    hidden = {"hid spaced": " =2+3", "hid nbsp": "\u00a0=1", "hid zero-width": "\u200b=1",
              "hid full-width": "\uff1d1+1", "hid listed": "\n- one"}  # fmt: skip
    for name, description in hidden.items():
        await create(client, name, description=description)
    await create(client, "semi;=cmd|' /C calc'!A0")
    response = await client.get("/things/download?sort=-name")
    assert response.status_code == 200
    assert response.content_type == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="things.csv"'
    assert response.headers["Cache-Control"] == "private"  # the catalogue, as the list page
    body = await response.get_data(as_text=True)
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert rows[0] == ["id", "name", "description", "created_at", "updated_at", "version"]
    by_name = {row[1]: row[2] for row in rows[1:]}
    assert set(by_name) == {"'=SUM(A1)", "'+1", "'-2", "'@cmd", "Tab", "plain",
                            "cmd|' /C calc'!A0", "tabbed", "returned", *hidden,
                            "semi;'=cmd|' /C calc'!A0"}  # fmt: skip
    for name, description in hidden.items():
        assert by_name[name] == "'" + description, name
    # Every cell is quoted, the header's too, so that a reader honouring quotes keeps
    # "semi;…" whole; and the piece after the ';' is neutralised for one that splits
    # there all the same (fresh-clone check: Python's csv with delimiter=';' did).
    for line in body.removeprefix("\ufeff").split("\r\n"):
        assert not line or (line.startswith('"') and line.endswith('"')), line
    pieces = body.split(";")[1:]
    assert pieces and not any(piece.lstrip().startswith(("=", "+", "-", "@")) for piece in pieces)
    assert by_name["plain"] == "'=1+1"
    assert (by_name["tabbed"], by_name["returned"]) == ("'\t=tab", "'\r=cr")
    for row in rows[1:]:
        assert not row[1].startswith(("=", "+", "-", "@", "\t", "\r"))
        assert not row[2].startswith(("=", "+", "-", "@", "\t", "\r"))
    # The name filter and the sort carry over; "-name" puts the plain names first.
    filtered = await (await client.get("/things/download?q=cmd&sort=name")).get_data(as_text=True)
    assert [r[1] for r in csv.reader(io.StringIO(filtered.removeprefix("\ufeff")))][1:] == [
        "'@cmd",
        "cmd|' /C calc'!A0",
        "semi;'=cmd|' /C calc'!A0",
    ]
    # Z to A by case-folded name; the tab was stripped from the ends of "\tTab".
    assert [r[1] for r in rows[1:]][:2] == ["tabbed", "Tab"]


async def test_the_list_filters_sorts_and_pages(app: Quart, client: Client) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with app.test_request_context("/"):
        session = await current_database().session()
        for n in range(60):
            name = f"Thing {n:02d}" if n % 2 else f"other {n:02d}"
            when = start + timedelta(minutes=n)
            session.add(Thing(name=name, name_key=name.casefold(), created_at=when))
        await current_database().commit()

    first = await page_text(client, "/things/")
    assert "Showing 1–25 of 60 things." in first
    rows = re.findall(r'<td><a href="/things/[0-9a-f-]{36}">([^<]+)</a></td>', first)
    assert rows[:2] == ["other 00", "other 02"] and len(rows) == 25
    assert '<a class="page-link" href="/things/?page=2" rel="next">Next</a>' in first
    assert 'rel="prev"' not in first

    last = await page_text(client, "/things/?page=3")
    assert "Showing 51–60 of 60 things." in last and 'rel="next"' not in last
    past = await client.get("/things/?page=4")
    assert past.status_code == 404
    assert "There is no page 4; the last page is " in await past.get_data(as_text=True)

    filtered = await page_text(client, "/things/?q=THING&sort=-name&page=2")
    assert "Showing 26–30 of 30 things with a name containing “THING”." in filtered
    assert 'href="/things/?q=THING&amp;sort=-name" rel="prev"' in filtered  # keeps filter, sort
    rows = re.findall(r'<td><a href="/things/[0-9a-f-]{36}">([^<]+)</a></td>', filtered)
    assert rows == ["Thing 09", "Thing 07", "Thing 05", "Thing 03", "Thing 01"]
    assert '<option value="-name" selected>' in filtered

    newest = await page_text(client, "/things/?sort=-created")
    rows = re.findall(r'<td><a href="/things/[0-9a-f-]{36}">([^<]+)</a></td>', newest)
    assert rows[0] == "Thing 59"


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "page=1.5", "page=" + "9" * 30, "sort=id", "sort=name;drop",
     "q=" + "x" * 201, "q=%00",
     # Regression (probe): text that is not UTF-8 was read as the filter "%FF", and a
     # control character at an end was stripped (str.strip()), one inside refused.
     "q=%ff", "q=%e2%82", "q=%1f", "q=kettle%1c", "x=%ff"],
)  # fmt: skip
async def test_a_bad_list_parameter_is_a_400_page(client: Client, query: str) -> None:
    for path in ("/things/", "/things/download"):
        response = await client.get(f"{path}?{query}")
        assert response.status_code == 400, query
        assert response.content_type.startswith("text/html")
        if query in ("q=%ff", "q=%e2%82"):
            html = await response.get_data(as_text=True)
            assert "The filter is not valid UTF-8 text" in html


@pytest.mark.parametrize(
    "q", ["%", "_", "/", "/%", "' OR 1=1 --", "\\", "'; DROP TABLE things; --", "a%b"]
)
async def test_the_filter_is_a_literal_substring(app: Quart, client: Client, q: str) -> None:
    await create(client, "100% cotton")
    await create(client, "under_score")
    await create(client, "either/or")
    await create(client, "plain")
    html = await page_text(client, "/things/?" + _query({"q": q}))
    rows = re.findall(r'<td><a href="/things/[0-9a-f-]{36}">([^<]+)</a></td>', html)
    expected = {"%": ["100% cotton"], "_": ["under_score"], "/": ["either/or"]}.get(q, [])
    assert rows == expected
    api = await (await client.get("/api/things?" + _query({"q": q}))).get_json()
    assert [thing["name"] for thing in api["items"]] == expected
    assert api["total"] == len(expected)
    past = await (await client.get("/api/things?" + _query({"q": q, "page": 2}))).get_json()
    assert (past["items"], past["total"]) == ([], len(expected))  # counted on its own
    exported = await (await client.get("/things/download?" + _query({"q": q}))).get_data(
        as_text=True
    )
    assert [row[1] for row in csv.reader(io.StringIO(exported[1:]))][1:] == expected
    assert await count(app) == 4


def _query(values: dict[str, Any]) -> str:
    return urlencode(values)


CSRF_REFUSALS = [
    ({}, {}),  # no token
    ({"csrf_token": "forged"}, {}),
    ({"csrf_token": "OTHER"}, {}),  # another session's valid token
    ({"csrf_token": "MINE"}, {"Origin": "https://evil.example"}),
    ({"csrf_token": "MINE"}, {"Sec-Fetch-Site": "cross-site"}),
]


@pytest.mark.parametrize(("extra", "headers"), CSRF_REFUSALS)
async def test_csrf_refusals_save_nothing(
    app: Quart, client: Client, extra: dict[str, str], headers: dict[str, str]
) -> None:
    thing_id = await create(client, "Kettle")
    other = client_of(app)
    other_token = await token(other)
    mine = await token(client)
    values = {k: {"MINE": mine, "OTHER": other_token}.get(v, v) for k, v in extra.items()}
    attempts = [
        ("/things/new", {"name": "New"}),
        (f"/things/{thing_id}/edit", {"name": "Changed", "version": "1"}),
        (f"/things/{thing_id}/delete", {"version": "1"}),
    ]
    for path, form in attempts:
        response = await client.post(path, form={**form, **values}, headers=headers)
        assert response.status_code == 400, path
        assert "The form expired" in await response.get_data(as_text=True)
    assert [(t.name, t.version) for t in await stored(app)] == [("Kettle", 1)]
