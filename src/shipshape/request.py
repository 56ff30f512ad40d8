"""The request class: a JSON body that cannot be read is a 400, never a 500.

Quart's ``get_json()`` decodes the body with a bare ``bytes.decode()`` and
parses it with ``json.loads``, so a body that is not UTF-8 raises
``UnicodeDecodeError`` and JSON nested a few thousand levels deep raises
``RecursionError``: both reach the client as a 500, with a traceback in the
log. This subclass turns each into the 400 that a client's mistake deserves
(quart-schema's ``validate_request`` reads bodies through it too). It is
installed by :class:`~shipshape.Shipshape` unless the app has a request
class of its own.

It also reads ``blueprints`` from a table kept per endpoint. Quart works the
list out on each read (an import, two properties and a split), and reads it
four times a request: for the before- and after-request hooks, the teardown
and the template context.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from quart import Request as QuartRequest
from werkzeug.exceptions import BadRequest


@lru_cache(maxsize=1024)  # endpoints, and the few requests that match none
def _blueprints(endpoint: str | None) -> tuple[str, ...]:
    """``admin.users.edit`` -> ``("admin.users", "admin")``, as Quart's ``blueprints``."""
    if endpoint is None or "." not in endpoint:
        return ()
    names = [endpoint.rpartition(".")[0]]
    while "." in names[-1]:
        names.append(names[-1].rpartition(".")[0])
    return tuple(names)


class Request(QuartRequest):
    @property
    def blueprints(self) -> list[str]:
        return list(_blueprints(self.endpoint))

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return await super().get_json(force, silent, cache)
        except (UnicodeDecodeError, RecursionError) as exc:
            if silent:
                return None
            if isinstance(exc, UnicodeDecodeError):
                raise BadRequest("The request body is not valid UTF-8 text.") from None
            raise BadRequest("The JSON is nested too deeply.") from None
