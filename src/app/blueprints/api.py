"""The Things JSON API under ``/api/things``, described at ``/openapi.json``.

quart-schema validates request bodies against the pydantic models below and
writes the OpenAPI document from them; the rules themselves (what a name may
be) are :mod:`app.things`' own, shared with the pages. Every error is the
app's JSON shape, ``{"error": status, "code": slug, "message": text}``, with
``fields`` for invalid input and ``current`` for a stale version.

The statuses and codes are listed in ``docs/things.md``; the tests hold the
API to them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema
from quart import Blueprint, Response, jsonify, request
from quart.typing import ResponseReturnValue
from quart_schema import (
    RequestSchemaValidationError,
    document_headers,
    document_querystring,
    document_response,
    tag_blueprint,
    validate_request,
)
from werkzeug.exceptions import RequestEntityTooLarge

from app import things
from app.models import DESCRIPTION_MAX, NAME_MAX, Thing
from app.things import (
    PAGE_MAX,
    QUERY_MAX,
    DuplicateNameError,
    InvalidQueryError,
    ListQuery,
    StaleVersionError,
    ThingGoneError,
)
from shipshape import etags
from shipshape.csrf import generate_csrf
from shipshape.database import current_database, current_session
from shipshape.etags import EntityTag
from shipshape.request import request_header

View = TypeVar("View", bound=Callable[..., Any])

blueprint = Blueprint("api", __name__, url_prefix="/api")
tag_blueprint(blueprint, ["things"])

BODY_MAX = 64 * 1024  # bytes: a thing is at most about 12 KiB of JSON

# The lengths are documented, and checked by app.things' own rules (after stripping).
Name = Annotated[
    str,
    AfterValidator(things.check_name),
    Field(
        description="Stripped of blanks at both ends, then 1 to 64 characters, unique "
        "whatever its case or form.",
        json_schema_extra={"minLength": 1, "maxLength": NAME_MAX},
    ),
]
Description = Annotated[
    str,
    AfterValidator(things.check_description),
    Field(json_schema_extra={"maxLength": DESCRIPTION_MAX}),
]


Version = Annotated[
    int,
    AfterValidator(things.check_version),
    Field(
        description="The version the thing was read at, as its ETag or body gave it.",
        json_schema_extra={"minimum": 1, "maximum": things.VERSION_MAX},
    ),
]


class ThingIn(BaseModel):
    """A new thing. `name` is stripped; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name
    description: Description = ""


class ThingReplace(ThingIn):
    """A whole thing, and the version it was read at (or send `If-Match`)."""

    version: Version | None = None


class ThingOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    version: int


class ThingList(BaseModel):
    items: list[ThingOut]
    total: int
    page: int
    pages: int
    per_page: int


class ListArgs(BaseModel):
    """The list's query, as ``ListQuery.from_query_string`` reads it (outside these, a 400)."""

    q: str | None = Field(
        None, max_length=QUERY_MAX, description="Names that contain this text, in any case."
    )
    sort: Literal["name", "-name", "created", "-created"] | None = None
    page: int | None = Field(None, ge=1, le=PAGE_MAX)


class Tagged(BaseModel):
    """The headers of a response that carries a thing."""

    etag: str = Field(
        description='The thing\'s version, for If-Match: "5" (W/"5" when compressed).'
    )


class Created(Tagged):
    location: str = Field(description="The new thing's URL.")


class Error(BaseModel):
    error: int
    code: str
    message: str
    fields: dict[str, list[str]] | None = None
    current: ThingOut | None = None


class CSRFToken(BaseModel):
    csrf_token: str


class Preconditions(BaseModel):
    """The conditional headers of a request for one thing, as :func:`entity_tags` reads
    them. Each is documented as a string: a header is absent or has a value, never null."""

    if_match: str | SkipJsonSchema[None] = Field(
        None,
        min_length=1,
        description='The version the request was made against, as the ETag gave it ("5", '
        'or W/"5" from a compressed response), a list of them (any may match), or * for '
        "any.",
    )
    if_none_match: str | SkipJsonSchema[None] = Field(
        None,
        min_length=1,
        description="ETags the thing must not be at (a list of them, or * for any): a GET "
        "gets 304 while one of them is the current version (the ETag already held), a write "
        "412.",
    )


def document_errors(*statuses: int) -> Callable[[View], View]:
    """Document the shared error shape for each of ``statuses``."""

    def decorate(view: View) -> View:
        for status in statuses:
            view = document_response(Error, status)(view)
        return view

    return decorate


#: Every route may be refused before its view: for a request the app will not read (400:
#: a Host not allowed, broken chunked framing; 415: a body sent compressed), for no
#: content coding the client accepts (406), for the client's rate (429), or for an outage
#: of the database or the rate-limit store (503). Every write may be refused for its CSRF
#: token (400), and a write with a body for a body that cannot be read (400) or its size
#: (413).
EVERY_ROUTE = (400, 406, 415, 429, 503)
EVERY_WRITE = EVERY_ROUTE
EVERY_BODY = (413, *EVERY_WRITE)

#: Answers without a body, which quart-schema's decorators cannot state; the
#: OpenAPI provider (``app.APIOnly``) adds them to the document.
BODILESS_RESPONSES = {
    ("get", "/api/things/{thing_id}"): {
        304: "Not modified: If-None-Match names the current version."
    },
    ("delete", "/api/things/{thing_id}"): {204: "Deleted."},
}


def api_error(status: int, code: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": status, "code": code, "message": message, **extra})
    response.status_code = status
    return response


def _etag(thing: Thing) -> str:
    return f'"{thing.version}"'


def one_thing(thing: Thing, status: int = 200) -> Response:
    response = jsonify(things.to_json(thing))
    response.status_code = status
    response.headers["ETag"] = _etag(thing)
    return response


def lost_race(
    exc: StaleVersionError, header: int | None | Literal["*"], *, any_version: bool
) -> Response:
    """Another write landed between this request's read and its write: what the request
    would have got a moment later. A 412 when it named its version in ``If-Match``, or
    when its ``If-None-Match`` names the version that landed, else a 409 for the body's
    version. A request that named no version, or ``*`` (``any_version``), was tried
    :data:`ANY_VERSION_TRIES` times against the current one (:func:`write_at_any_version`);
    one that still lost gets a 409 that says so, naming no version it did not send."""
    refused = other_version(exc.current, header) or none_match(exc.current)
    if refused is not None:
        return refused
    return kept_changing(exc) if any_version else conflict(exc)


def kept_changing(exc: StaleVersionError) -> Response:
    """409 for a write that named no version and lost every try to other writes."""
    return api_error(
        409,
        "conflict",
        f"The thing kept changing while this request tried to write it ({ANY_VERSION_TRIES} "
        f"tries); it is now at version {exc.current.version}. Try again.",
        current=things.to_json(exc.current),
    )


def conflict(exc: StaleVersionError) -> Response:
    return api_error(
        409,
        "conflict",
        f"The thing was changed since the version you sent; it is now at version "
        f"{exc.current.version}.",
        current=things.to_json(exc.current),
    )


def name_taken(exc: DuplicateNameError) -> Response:
    return api_error(409, "name_taken", exc.message, fields={"name": [exc.message]})


def not_found() -> Response:
    return api_error(404, "not_found", "There is no thing with this id.")


async def find(thing_id: str) -> Thing | Response:
    thing = await things.get_thing(await current_session(), things.parse_id(thing_id))
    if thing is None:
        return not_found()
    return thing


@blueprint.before_request
async def json_bodies_only() -> Response | None:
    """Writes take JSON of a bounded size, and a delete no body; anything else is refused
    before it is parsed.

    A declared length over the cap is refused unread; a chunked body is read
    (MAX_CONTENT_LENGTH, 1 MiB, bounds that) and then measured.
    """
    if request.method == "DELETE":
        # A delete names its version in If-Match; a version in a body would be ignored,
        # and the thing deleted at whichever version is current.
        if request.content_length or await request.get_data():
            return api_error(
                400, "bad_request", "A delete takes no body: name the version in If-Match."
            )
        return None
    if request.method not in {"POST", "PUT", "PATCH"}:
        return None
    if request.content_length is not None and request.content_length > BODY_MAX:
        raise RequestEntityTooLarge()
    if not request.is_json:
        return api_error(415, "unsupported_media_type", "Send the body as application/json.")
    if len(await request.get_data()) > BODY_MAX:
        raise RequestEntityTooLarge()
    return None


@blueprint.after_request
async def bodiless_options(response: Response) -> Response:
    """Quart answers ``OPTIONS`` itself (no view here has one, and the app answers no
    CORS preflight) with an empty ``200 text/html``: here it is a 204 with its ``Allow``
    and no type, as the API's other empty answers are (:func:`no_content`)."""
    if request.method != "OPTIONS" or "Allow" not in response.headers:
        return response
    answer = no_content()
    answer.headers["Allow"] = response.headers["Allow"]
    return answer


@blueprint.errorhandler(RequestSchemaValidationError)
async def invalid(error: RequestSchemaValidationError) -> Response:
    fields: dict[str, list[str]] = {}
    problem = error.validation_error
    if isinstance(problem, ValidationError):
        for item in problem.errors(include_url=False):
            where = ".".join(str(part) for part in item["loc"]) or "body"
            context = item.get("ctx", {})
            if item["type"] == "value_error" and "error" in context:
                message = str(context["error"])  # app.things' own wording
            elif item["type"] == "model_type" and not item["loc"]:
                message = "Send a JSON object"
            elif item["type"] == "extra_forbidden":
                message = "Unknown field"
            else:
                message = item["msg"]
            fields.setdefault(where, []).append(message)
    else:
        fields["body"] = ["Send a JSON object"]
    return api_error(422, "invalid", "Some fields are not valid.", fields=fields)


@blueprint.get("/csrf-token")
@document_response(CSRFToken)
@document_errors(*EVERY_ROUTE)
async def csrf_token() -> ResponseReturnValue:
    """The token for the X-CSRF-Token header of every write.

    It is bound to the session cookie this response may set: send both.
    """
    response = jsonify({"csrf_token": generate_csrf()})
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/things")
@document_querystring(ListArgs)
@document_response(ThingList)
@document_errors(*EVERY_ROUTE)  # 400 also for a query outside ListArgs
async def list_things() -> ResponseReturnValue:
    """A page of things (25 a page), filtered by name and sorted; past the last page, none."""
    try:
        query = ListQuery.from_query_string(request.query_string)
    except InvalidQueryError as exc:
        return api_error(400, "invalid_query", str(exc), fields={exc.field: [str(exc)]})
    page = await things.list_things(await current_session(), query)
    return jsonify(
        {
            "items": [things.to_json(thing) for thing in page.items],
            "total": page.total,
            "page": page.page,
            "pages": page.pages,
            "per_page": page.per_page,
        }
    )


@blueprint.post("/things")
@validate_request(ThingIn)
@document_response(ThingOut, 201, Created)
@document_errors(409, 422, *EVERY_BODY)
async def create_thing(data: ThingIn) -> ResponseReturnValue:
    """Add a thing."""
    try:
        thing = await things.create_thing(await current_session(), data.name, data.description)
    except DuplicateNameError as exc:
        return name_taken(exc)
    await current_database().commit()
    response = one_thing(thing, 201)
    response.headers["Location"] = f"/api/things/{thing.id}"
    return response


@blueprint.get("/things/<thing_id>")
@document_headers(Preconditions)
@document_response(ThingOut, 200, Tagged)
@document_errors(404, 412, *EVERY_ROUTE)
async def get_thing(thing_id: str) -> ResponseReturnValue:
    """One thing; its ETag is its version, for If-Match.

    `If-None-Match` with the current ETag gets 304, `If-Match` with another
    version 412 (RFC 9110 §13.2.2).
    """
    found, _ = await find_matching(thing_id)
    if isinstance(found, Response):
        return found
    return one_thing(found)


#: Tries of a write that names no version (``If-Match: *``, a delete without it), each
#: against the version that landed while the one before it worked: under a burst of
#: writes to one thing a second race in a row is common, a fifth rare.
ANY_VERSION_TRIES = 5


async def write_at_any_version(
    write: Callable[[Thing], Awaitable[None]], thing: Thing, *, retry: bool
) -> Thing:
    """``write(thing)``; with ``retry``, a write that loses a race (``StaleVersionError``)
    is made again against the version that landed, up to :data:`ANY_VERSION_TRIES` times.
    The thing as last written; the last ``StaleVersionError`` when every try lost."""
    for _ in range(ANY_VERSION_TRIES - 1):
        try:
            await write(thing)
            return thing
        except StaleVersionError as exc:
            if not retry or none_matching(exc.current) is not None:
                raise  # If-None-Match refuses the version that landed (lost_race says so)
            thing = exc.current
    await write(thing)  # the last try: its StaleVersionError is the caller's
    return thing


#: A tag that names no version this API ever sent (``"01"``, ``"abc"``, an unquoted ``5``).
NO_VERSION = -1


def entity_tags(name: bytes) -> tuple[EntityTag, ...] | None | Literal["*"]:
    """The tags a conditional header names, in order, ``*`` (any), or ``None`` when it
    is absent: one reading (:func:`shipshape.etags.parse`) for ``If-Match`` and
    ``If-None-Match``, and for the static files, so that they agree. An element that is
    no entity tag (an unquoted ``5``, two tags with no comma) is one tag no thing has,
    so ``If-Match`` fails with it alone (412) and ``If-None-Match`` holds.
    """
    raw = request_header(name)  # repeated lines joined, as one list
    return None if raw is None else etags.parse(raw)


def if_match() -> tuple[int, ...] | None | Literal["*"]:
    """The versions ``If-Match`` names, in order (:func:`entity_tags`), ``*`` (any), or
    ``None`` when absent. A list matches when any of its tags does (RFC 9110 §13.1.1).

    The ETag is the thing's version, which every content coding of it shares, so
    the weak form the compression layer gives a compressed response (``W/"5"``,
    RFC 9110 §8.8.3) names version 5 as ``"5"`` does: a client echoing back the
    ETag it was sent must be able to write with it.
    """
    tags = entity_tags(b"if-match")
    return tuple(_version(tag) for tag in tags) if isinstance(tags, tuple) else tags


def none_matching(found: Thing) -> tuple[EntityTag, ...] | Literal["*"] | None:
    """The tags of ``If-None-Match`` that name ``found``'s current version, or ``*``;
    ``None`` when it names another, or is absent (weak comparison, RFC 9110 §13.1.2)."""
    tags = entity_tags(b"if-none-match")
    if tags is None or tags == "*":
        return tags
    etag = _etag(found)
    return tuple(tag for tag in tags if tag.matches_weakly(etag)) or None


def none_match(found: Thing) -> Response | None:
    """What ``If-None-Match`` answers when it names ``found``'s current version (or
    ``*``): 304 to a GET or HEAD, whose client holds this version already, and 412 to
    a write, which was made on the condition that the thing is at none of those
    versions (``*``: that there is no thing; RFC 9110 §13.1.2). ``None`` otherwise."""
    matching = none_matching(found)
    if matching is None:
        return None
    if request.method not in {"GET", "HEAD"}:
        message = (
            f"If-None-Match: * refuses any version; the thing is at version {found.version}."
            if matching == "*"
            else f"If-None-Match names version {found.version}, the thing's current version."
        )
        return api_error(412, "precondition_failed", message, current=things.to_json(found))
    # The tag in the form the client sent it, which is the form of the 200 it stored
    # (strong as the view sends it, weak as compression leaves it), and the 200's Vary.
    # A decision: RFC 9110 §15.4.5 asks for this request's 200's tag, which a client
    # that now accepts another coding would get in the other form.
    response = no_content(304)
    strong = matching == "*" or any(not tag.weak for tag in matching)
    response.headers["ETag"] = _etag(found) if strong else f"W/{_etag(found)}"
    response.headers["Vary"] = "Accept-Encoding"
    return response


def _version(tag: EntityTag) -> int:
    """The version a tag names: tags compare character by character, so ``"01"`` is
    not ``"1"`` (:func:`app.things.parse_version`, which the edit form's version uses too)."""
    version = None if tag.opaque is None else things.parse_version(tag.opaque[1:-1])
    return NO_VERSION if version is None else version


def other_version(found: Thing, header: int | None | Literal["*"]) -> Response | None:
    """412 when ``If-Match`` names a version other than the current one."""
    if isinstance(header, int) and header != found.version:
        message = (
            f"If-Match names version {header}; the thing is at version {found.version}."
            if header != NO_VERSION
            else f'If-Match must be an ETag this API sent, such as "{found.version}", or *.'
        )
        return api_error(412, "precondition_failed", message, current=things.to_json(found))
    return None


async def find_matching(thing_id: str) -> tuple[Thing | Response, int | None | Literal["*"]]:
    """The thing a request names and the version its ``If-Match`` matched (else the
    first it named), or what answers instead: 404, the 412 of ``If-Match``, then
    ``If-None-Match``'s 304 or 412 (RFC 9110 §13.2.2's order)."""
    named = if_match()
    found = await find(thing_id)
    if not isinstance(named, tuple):
        header: int | None | Literal["*"] = named
    elif isinstance(found, Thing) and found.version in named:
        header = found.version
    else:
        header = next((v for v in named if v != NO_VERSION), NO_VERSION)
    if isinstance(found, Thing):
        refused = other_version(found, header) or none_match(found)
        if refused is not None:
            return refused, header
    return found, header


@blueprint.put("/things/<thing_id>")
@validate_request(ThingReplace)
@document_headers(Preconditions)
@document_response(ThingOut, 200, Tagged)
@document_errors(404, 409, 412, 422, 428, *EVERY_BODY)
async def replace_thing(thing_id: str, data: ThingReplace) -> ResponseReturnValue:
    """Replace a thing's name and description, made against the version it was read at."""
    found, header = await find_matching(thing_id)
    if isinstance(found, Response):
        return found
    if header is not None and data.version is not None and header != data.version:
        message = (
            "If-Match: * replaces any version; it cannot be sent with a version in the body."
            if header == "*"
            else f"If-Match ({request_header(b'if-match')}) and the body's version "
            f"({data.version}) name different versions; send one of them, or the same in both."
        )
        return api_error(400, "versions_differ", message)
    seen = found.version if header is not None else data.version
    if seen is None:
        return api_error(
            428, "version_required", "Send If-Match or the version the change was made against."
        )
    session = await current_session()
    any_version = header == "*"  # replaces whichever version is current

    async def replace(thing: Thing) -> None:
        version = thing.version if any_version else seen
        await things.update_thing(session, thing, data.name, data.description, version)

    try:
        found = await write_at_any_version(replace, found, retry=any_version)
    except DuplicateNameError as exc:
        return name_taken(exc)
    except StaleVersionError as exc:
        return lost_race(exc, header, any_version=any_version)
    except ThingGoneError:
        return not_found()
    await current_database().commit()
    return one_thing(found)


@blueprint.delete("/things/<thing_id>")
@document_headers(Preconditions)
@document_errors(404, 409, 412, *EVERY_WRITE)
async def delete_thing(thing_id: str) -> ResponseReturnValue:
    """Delete a thing; with If-Match, only at that version."""
    found, header = await find_matching(thing_id)
    if isinstance(found, Response):
        return found
    session = await current_session()
    any_version = not isinstance(header, int)  # none named, or *: whichever is current goes

    async def delete(thing: Thing) -> None:
        await things.delete_thing(session, thing, None)

    try:
        await write_at_any_version(delete, found, retry=any_version)
    except StaleVersionError as exc:
        return lost_race(exc, header, any_version=any_version)
    except ThingGoneError:  # another delete landed first
        return not_found()
    await current_database().commit()
    return no_content()


def no_content(status: int = 204) -> Response:
    """204 or 304 with no ``Content-Type`` (RFC 9110 §15.3.5, §15.4.5), so it gets the API's
    headers, not a page's: Quart would call the empty body ``text/html``."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response
