"""The request class: a body that cannot be read as text or JSON is a 400, never a 500.

Quart decodes ``get_data(as_text=True)`` and ``get_json()`` with a bare
``bytes.decode()`` and ``json.loads``, so a body that is not UTF-8 raises
``UnicodeDecodeError``, and JSON nested a few thousand levels deep raises
``RecursionError``: both reach the client as a 500 with a traceback in the
log. This subclass turns each into the 400 a client error deserves. It is
installed by :class:`~shipshape.Shipshape` unless the app brought a request
class of its own.
"""

from __future__ import annotations

from typing import Any, AnyStr, Literal, overload

from quart import Request as QuartRequest
from werkzeug.exceptions import BadRequest


class Request(QuartRequest):
    @overload
    async def get_data(
        self, cache: bool, as_text: Literal[False], parse_form_data: bool
    ) -> bytes: ...

    @overload
    async def get_data(self, cache: bool, as_text: Literal[True], parse_form_data: bool) -> str: ...

    @overload
    async def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> AnyStr: ...

    async def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> str | bytes:
        try:
            return await super().get_data(cache, as_text, parse_form_data)  # type: ignore[call-overload, no-any-return]
        except UnicodeDecodeError:
            raise BadRequest("The request body is not valid UTF-8 text.") from None

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return await super().get_json(force, silent, cache)
        except RecursionError:
            if silent:
                return None
            raise BadRequest("The JSON is nested too deeply.") from None
