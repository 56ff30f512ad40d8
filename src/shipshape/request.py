"""The request class: a JSON body that cannot be read is a 400, never a 500.

Quart's ``get_json()`` decodes the body with a bare ``bytes.decode()`` and
parses it with ``json.loads``, so a body that is not UTF-8 raises
``UnicodeDecodeError`` and JSON nested a few thousand levels deep raises
``RecursionError``: both reach the client as a 500, with a traceback in the
log. This subclass turns each into the 400 that a client's mistake deserves
(quart-schema's ``validate_request`` reads bodies through it too). It is
installed by :class:`~shipshape.Shipshape` unless the app has a request
class of its own.

A body that is not JSON gets a 400 that says why, and so does an object that
names a key twice (``json.loads`` keeps the last; a proxy or a log that reads
the first would see another request), in every mode, in the
client's terms (:meth:`Request.on_json_loading_failed`): Quart says why only
in debug mode, and then in Python's ("use sys.set_int_max_str_digits() to
increase the limit", "decode using utf-8-sig").

A form body gets the same rule (:class:`FormDataParser`, through
:func:`parse_urlencoded`, which reads a query string the same way for a view
that asks). Quart decodes its percent-escapes with ``parse_qsl``'s default
``errors="replace"``, so a name sent as ``%FF`` was saved as ``U+FFFD``
without a word, and a body of raw bytes that are not UTF-8 made its bare
``decode()`` raise a ``ValueError`` that the parser swallows into an empty
form (which the CSRF check then called an expired form). Both are now a 400
that says what is wrong, and so is a multipart text field (or a field's or a
file's name) that is not UTF-8, or not the charset its part names, which
Quart's multipart parser decoded with ``errors="replace"`` as well.

:class:`RequestBodyMiddleware` refuses, before Quart runs, a query string of
raw bytes (400), a body sent with a content coding (415) or two
``Content-Type`` lines (400), and answers a
chunked body that the server could not read with a 400, where granian would
send a bare 500 of its own.

:func:`request_header` reads a header in a view or a hook as the ASGI layers
read it, repeated lines joined.

It also reads ``blueprints`` from a table kept per endpoint. Quart works the
list out on each read (an import, two properties and a split), and reads it
four times a request: for the before- and after-request hooks, the teardown
and the template context.
"""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, cast
from urllib.parse import parse_qsl

from quart import Request as QuartRequest
from quart import has_websocket_context, request, websocket
from quart import json as quart_json
from quart.formparser import FormDataParser as QuartFormDataParser
from quart.formparser import MultiPartParser as QuartMultiPartParser
from quart.wrappers import BaseRequestWebsocket
from quart.wrappers.request import Body
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from shipshape import responses
from shipshape.logging import UNREADABLE_BODY
from shipshape.scope import header
from shipshape.typing import ASGIApp, Message, RawHeaders, Receive, Scope, Send

NOT_UTF8 = "The request body is not valid UTF-8 text."


@lru_cache(maxsize=1024)  # endpoints, and the few requests that match none
def _blueprints(endpoint: str | None) -> tuple[str, ...]:
    """``admin.users.edit`` -> ``("admin.users", "admin")``, as Quart's ``blueprints``."""
    if endpoint is None or "." not in endpoint:
        return ()
    names = [endpoint.rpartition(".")[0]]
    while "." in names[-1]:
        names.append(names[-1].rpartition(".")[0])
    return tuple(names)


class NotUTF8Error(ValueError):
    """URL-encoded text that is not UTF-8; ``name`` is its parameter's name, or ``None``
    when the name itself is not."""

    def __init__(self, name: str | None) -> None:
        super().__init__(f"the text of {name!r} is not UTF-8" if name else "a name is not UTF-8")
        self.name = name


def parse_urlencoded(raw: bytes) -> list[tuple[str, str]]:
    """The name-value pairs of a form body or a query string, in order, each name and
    value UTF-8 (raw or percent-escaped), strictly: :class:`NotUTF8Error` names the
    first parameter that is not.

    Werkzeug's ``request.args`` keeps an escape that is not UTF-8 as its text (``%ff``
    reads ``%FF``), and Quart's form parser made it U+FFFD: either way, a value that
    nobody sent. Each pair is split and unescaped as bytes (Latin-1 maps each byte to
    one character and back), then decoded, so the error can name its parameter.
    """
    pairs = []
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
        try:
            name = name.encode("latin-1").decode()
        except UnicodeDecodeError:
            raise NotUTF8Error(None) from None
        try:
            pairs.append((name, value.encode("latin-1").decode()))
        except UnicodeDecodeError:
            raise NotUTF8Error(name) from None
    return pairs


async def _parse_urlencoded(
    parser: QuartFormDataParser,
    body: Body,
    mimetype: str,
    content_length: int | None,
    options: dict[str, str],
) -> tuple[MultiDict[Any, Any], MultiDict[Any, Any]]:
    cls = parser.cls or MultiDict
    try:
        return cls(parse_urlencoded(await body)), cls()
    except NotUTF8Error:
        raise BadRequest("The form's text is not valid UTF-8.") from None


#: A codec name prefix whose codec decodes as the named one, strictly, whatever
#: ``errors`` it is asked for: Quart's multipart parser decodes every text field
#: with ``errors="replace"``, a choice made inside its ``parse`` loop.
_STRICT_CODEC = "shipshape_strict_"


def _find_strict_codec(name: str) -> codecs.CodecInfo | None:
    if not name.startswith(_STRICT_CODEC):
        return None
    codec = codecs.lookup(name.removeprefix(_STRICT_CODEC))

    def decode(data: Any, errors: str = "strict", /) -> tuple[str, int]:
        return codec.decode(data, "strict")

    return codecs.CodecInfo(codec.encode, decode, name=name)


codecs.register(_find_strict_codec)


class _StrictMultiPartParser(QuartMultiPartParser):
    """Quart's multipart parser, with a text field its charset cannot decode refused."""

    def get_part_charset(self, headers: Any) -> str:
        return _STRICT_CODEC + super().get_part_charset(headers)


async def _parse_multipart(
    parser: QuartFormDataParser,
    body: Body,
    mimetype: str,
    content_length: int | None,
    options: dict[str, str],
) -> tuple[MultiDict[Any, Any], MultiDict[Any, Any]]:
    multipart = _StrictMultiPartParser(
        cls=parser.cls or MultiDict,
        file_storage_cls=parser.file_storage_class,
        max_content_length=parser.max_content_length,
        max_form_memory_size=parser.max_form_memory_size,
        max_form_parts=parser.max_form_parts,
        stream_factory=parser.stream_factory,
    )
    boundary = options.get("boundary", "").encode("ascii")
    if not boundary:
        raise ValueError("Missing boundary")  # Quart's own words; an empty form
    try:
        # None for a chunked body, as Quart's own passes it
        return await multipart.parse(body, boundary, content_length)  # type: ignore[arg-type]
    except UnicodeDecodeError:  # a field's text, or a field's or a file's name
        raise BadRequest(
            "The form's text is not valid UTF-8 (or not the charset its part names)."
        ) from None


class FormDataParser(QuartFormDataParser):
    """Quart's parser, with form text that is not UTF-8 refused (a 400), URL-encoded or
    multipart (a text field; a file's bytes are the file's)."""

    parse_functions = {
        **QuartFormDataParser.parse_functions,
        "application/x-www-form-urlencoded": _parse_urlencoded,
        "application/x-url-encoded": _parse_urlencoded,
        "multipart/form-data": _parse_multipart,
    }


class DuplicateKeyError(ValueError):
    """A JSON object that names one key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {json.dumps(key)} appears twice in one object")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members as a dict, or :class:`DuplicateKeyError`: ``json.loads``
    keeps the last of two same-named keys, and a proxy or a log may read the first."""
    members: dict[str, Any] = {}
    for key, value in pairs:
        if key in members:
            raise DuplicateKeyError(key)
        members[key] = value
    return members


class NotJSONError(ValueError):
    """A value that Python's parser takes and JSON has not: ``NaN``, ``Infinity``, or a
    number too large for a float (``1e999``, which Python reads as infinity)."""


def _no_constant(name: str) -> Any:
    raise NotJSONError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise NotJSONError(f"the number {text[:20]}{'…' if len(text) > 20 else ''} is too large")
    return number


#: ``json.loads``' hooks for a request's JSON: a key twice, ``NaN``, a number past a float.
STRICT_JSON: dict[str, Any] = {
    "object_pairs_hook": _unique_keys,
    "parse_constant": _no_constant,
    "parse_float": _finite,
}


def strict_loads(text: str | bytes) -> Any:
    """``json.loads`` with :data:`STRICT_JSON`: a ``ValueError`` for what JSON has not."""
    return json.loads(text, **STRICT_JSON)


class _UniqueKeysJSON:
    """What a request parses its body with: the app's JSON, refusing duplicate keys and
    what RFC 8259 has no place for (``NaN``, ``Infinity``, a number past a float's range)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def loads(self, text: str | bytes, **kwargs: Any) -> Any:
        return self.provider.loads(text, **STRICT_JSON, **kwargs)

    def dumps(self, value: Any, **kwargs: Any) -> str:
        return str(self.provider.dumps(value, **kwargs))


class Request(QuartRequest):
    form_data_parser_class = FormDataParser

    # Quart sets the app's JSON provider on each request it pushes; the body is read
    # through it, with duplicate keys refused.
    _json_provider: Any = quart_json  # until Quart sets the app's

    @property
    def json_module(self) -> Any:
        return _UniqueKeysJSON(self._json_provider)

    @json_module.setter
    def json_module(self, provider: Any) -> None:
        self._json_provider = provider

    @property
    def blueprints(self) -> list[str]:
        return list(_blueprints(self.endpoint))

    def on_json_loading_failed(self, error: Exception) -> Any:
        if isinstance(error, DuplicateKeyError | NotJSONError):
            reason = str(error)
        elif isinstance(error, json.JSONDecodeError):
            reason = (
                "it starts with a byte order mark"
                if error.msg.startswith("Unexpected UTF-8 BOM")
                # "Invalid control character at": the position follows, in our words
                else f"{error.msg.removesuffix(' at')}, at line {error.lineno} column {error.colno}"
            )
        else:  # json.loads' other ValueError: a number past Python's 4,300 digits
            reason = "a number in it is too long"
        raise BadRequest(f"The body is not valid JSON: {reason}.")

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return await super().get_json(force, silent, cache)
        except (UnicodeDecodeError, RecursionError) as exc:
            if silent:
                return None
            if isinstance(exc, UnicodeDecodeError):
                raise BadRequest(NOT_UTF8) from None
            raise BadRequest("The JSON is nested too deeply.") from None


def current_connection() -> BaseRequestWebsocket:
    """The request, or the WebSocket handshake, being handled: the pipeline's steps
    before the view (rate limits, the cross-site check) run for both."""
    if has_websocket_context():
        return websocket._get_current_object()  # type: ignore[attr-defined,no-any-return]
    return request._get_current_object()  # type: ignore[attr-defined,no-any-return]


def request_header(name: bytes) -> str | None:
    """One header of the current request (``name`` lower-case), read as the ASGI layers
    read it (:func:`shipshape.scope.header`): repeated lines joined into one list.

    Werkzeug's ``request.headers.get`` gives the first line only, so a layer and a
    view would read two lines of one header differently.
    """
    return header(cast(Scope, current_connection().scope), name)


UNREADABLE_BODY_MESSAGE = "The request body could not be read: its chunked framing is broken."


#: Why a query string of raw bytes is refused (:class:`RequestBodyMiddleware`).
RAW_QUERY_MESSAGE = (
    "The address's query string has characters that are not percent-encoded: "
    "send them as %XX escapes of their UTF-8 bytes."
)


class RequestBodyMiddleware:
    """A request body the app cannot read as it was sent is refused before Quart runs,
    and so is a query string of raw bytes.

    - **A query string with bytes outside ASCII** (``?q=\xff`` as sent, not
      ``%FF``): 400. RFC 3986 allows only ASCII there and browsers
      percent-encode the rest. Over HTTP/1.1, granian, uvicorn (httptools and
      h11) and hypercorn refuse such a request line themselves (checked by
      hand), but ASGI lets a server hand any bytes on, and Quart's URL matching
      decodes them as UTF-8 before any view or error handler runs: a bare 500
      and a traceback (the test client shows it). A WebSocket handshake is
      closed unaccepted.

    For the rest, only a request that has a body (a ``Content-Length`` above 0,
    or ``Transfer-Encoding``) is looked at; the others pass untouched.

    - **A content coding** (``Content-Encoding: gzip``): 415 with
      ``Accept-Encoding: identity`` (RFC 9110 §12.5.3). Nothing here decodes a
      compressed request body, so the app would read the compressed bytes as
      text (a 400 that blamed UTF-8) or, for a body that only claimed it, take
      it as plain.
    - **Two ``Content-Type`` lines**: 400. Quart reads the first and a proxy
      may read the other: two readers would see two different requests (the
      reason a JSON key twice is refused too).
    - **A chunked body the server could not read**: 400. When granian cannot
      parse one (a chunk size that is not hex, lines ended by LF alone), it
      tells the app that the client went away; Quart then stops without a
      response, and granian answers ``500 Internal server error`` itself, with
      no headers of the app's. A request whose body ended in
      ``http.disconnect`` and that got no response is answered with a 400
      instead. A client that really did go away is sent it too, and the server
      drops it (granian and uvicorn drop what is sent after a disconnect,
      without an error). A body with a ``Content-Length`` cannot be malformed,
      only cut short by a client that left, so only chunked bodies are watched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_prefix: str = "/api/",
        headers: Iterable[tuple[bytes, bytes]] = (),
        hsts: bytes | None = None,
    ) -> None:
        self.app = app
        self.api_prefix = api_prefix
        # The refusals' profile (the security headers' API one), and HSTS over HTTPS.
        self.headers: RawHeaders = list(headers)
        self.hsts = hsts

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        code: str,
        message: str,
        *extra: tuple[bytes, bytes],
    ) -> None:
        await responses.error(
            scope, send, status, code, message,
            api_prefix=self.api_prefix, headers=[*self.headers, *extra], hsts=self.hsts,
        )  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not scope.get("query_string", b"").isascii():
            if scope["type"] == "http":
                await self._refuse(scope, send, 400, "bad_request", RAW_QUERY_MESSAGE)
            elif scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # the server's 403
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = header(scope, b"transfer-encoding") is not None
        if not chunked and header(scope, b"content-length") in (None, "0"):
            await self.app(scope, receive, send)  # no body: nothing to refuse
            return
        coding = header(scope, b"content-encoding")
        if coding is not None and coding.strip().lower() not in ("", "identity"):
            await self._refuse(
                scope, send, 415, "unsupported_media_type",
                "The request body is sent with a Content-Encoding, which this site does"
                " not decode: send it uncompressed.",
                (b"accept-encoding", b"identity"),
            )  # fmt: skip
            return
        if sum(name == b"content-type" for name, _ in scope.get("headers", ())) > 1:
            await self._refuse(
                scope, send, 400, "bad_request", "The request has two Content-Type headers."
            )
            return
        if not chunked:
            await self.app(scope, receive, send)
            return
        gone = answered = False

        async def watch_receive() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def watch_send(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        await self.app(scope, watch_receive, watch_send)
        if gone and not answered:
            scope[UNREADABLE_BODY] = True  # the request line says so (shipshape.logging)
            await self._refuse(scope, send, 400, "bad_request", UNREADABLE_BODY_MESSAGE)
