"""Per-view policy: one row per endpoint, gathered once when serving starts.

Every per-view decorator of the production layer (``@csrf_exempt``,
``@rate_limit``, ``@header_profile``, ``@security_headers``, the ``@csp_*``
family, ``@json_errors``) only records a column in one attribute of the view,
:data:`POLICY_ATTR`. When the app starts serving, :class:`PolicyTable` reads
that attribute once per endpoint into a frozen :class:`ViewPolicy`; every
feature then reads its column from the request's row, a dict lookup, instead
of looking the view up again. Requests that match no route (404, 405) share
one row of their own.

A new per-view policy is a new column here, plus the decorator that sets it::

    @rate_limit("10/minute")
    @csrf_exempt
    async def webhook(): ...

    policies.row("webhook").csrf_exempt  # True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Quart, current_app

from shipshape.exceptions import ShipshapeError
from shipshape.request import current_connection
from shipshape.typing import ViewT

if TYPE_CHECKING:
    from shipshape.csp import Policy
    from shipshape.headers import Profile
    from shipshape.ratelimit.limiter import RateRule

#: The one attribute the per-view decorators set: a mapping of column -> value.
POLICY_ATTR = "_shipshape_policy"

CSPChange = Callable[["Policy"], "Policy | None"]


@dataclass(frozen=True, slots=True)
class ViewPolicy:
    """What the production layer does for one endpoint's requests."""

    #: The endpoint, or ``None`` for requests that match no route.
    endpoint: str | None
    #: Skip the CSRF check (:func:`shipshape.csrf.csrf_exempt`).
    csrf_exempt: bool = False
    #: Answer errors in JSON whatever the client accepts (``@json_errors``).
    json_errors: bool = False
    #: Limits and key function (``@rate_limit``, ``limit_blueprint``), or the default's.
    rate_limit: RateRule | None = None
    #: No rate limit at all, not even the default (``@rate_exempt``).
    rate_exempt: bool = False
    #: The header profile, or ``None`` to choose by the response's media type.
    header_profile: Profile | None = None
    #: Headers set (a string) or dropped (``None``) for this view.
    header_overrides: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))
    #: A change to the profile's CSP (``@csp_extend``, ``@csp_replace``, ``@csp_exempt``).
    csp_change: CSPChange | None = None

    @classmethod
    def of(
        cls, endpoint: str, view: Callable[..., Any] | None, app: Quart | None = None
    ) -> ViewPolicy:
        """The row for ``endpoint`` from what the decorators recorded on ``view``.

        Columns set on the view's blueprints (outermost first) apply unless
        the view sets its own.
        """
        columns: dict[str, Any] = {}
        if app is not None:
            parts = endpoint.split(".")[:-1]
            for depth in range(1, len(parts) + 1):
                blueprint = app.blueprints.get(".".join(parts[:depth]))
                if blueprint is not None:
                    columns.update(view_columns(blueprint))
        if view is not None:
            columns.update(view_columns(view))
        if "header_overrides" in columns:
            columns["header_overrides"] = MappingProxyType(dict(columns["header_overrides"]))
        if endpoint == "static" or endpoint.endswith(".static"):
            columns.setdefault("header_profile", "static")  # Quart's own static routes
            # Files are never limited, whatever their blueprint's limit says.
            columns["rate_exempt"], columns["rate_limit"] = True, None
        return cls(endpoint=endpoint, **columns)


COLUMNS = frozenset(f.name for f in fields(ViewPolicy)) - {"endpoint"}


def view_columns(target: object) -> Mapping[str, Any]:
    """The columns recorded on a view (or a blueprint) so far."""
    columns: Mapping[str, Any] = getattr(target, POLICY_ATTR, MappingProxyType({}))
    return columns


def set_columns(view: ViewT, **columns: Any) -> ViewT:
    """Record policy columns on ``view``; what a per-view decorator does, and all it does."""
    _record(view, columns)
    return view


def set_blueprint_columns(blueprint: Blueprint, **columns: Any) -> None:
    """Record policy columns for every view of ``blueprint`` that does not set its own."""
    _record(blueprint, columns)


def _record(target: object, columns: dict[str, Any]) -> None:
    unknown = set(columns) - COLUMNS
    if unknown:
        raise TypeError(f"unknown view policy columns {sorted(unknown)}")
    setattr(target, POLICY_ATTR, MappingProxyType({**view_columns(target), **columns}))


class MethodPolicyError(ShipshapeError):
    """A per-view decorator on a class-based view's method, where it would do nothing."""


def _refuse_method_decorators(endpoint: str, view: object) -> None:
    """Stop start-up for a per-view decorator on a ``MethodView``'s method: Quart routes
    to the class's view function, whose policy is the class's, so the decorator would be
    ignored without a word (a rate limit not applied, a CSRF exemption not made)."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return
    if view_columns(view_class):  # on the class itself: as_view copies none of it
        raise MethodPolicyError(
            f"{view_class.__name__} (endpoint {endpoint!r}) has "
            f"{', '.join(sorted(view_columns(view_class)))} set by a decorator on the "
            "class, which Quart never sees: put the decorator in the class's "
            "`decorators` list"
        )
    for method in getattr(view_class, "methods", None) or ():
        function = getattr(view_class, method.lower(), None)
        if view_columns(function):
            raise MethodPolicyError(
                f"{view_class.__name__}.{method.lower()} (endpoint {endpoint!r}) has "
                f"{', '.join(sorted(view_columns(function)))} set by a decorator on the "
                "method, which Quart never sees: put the decorator in the class's "
                "`decorators` list, where it applies to every method"
            )


class PolicyTable:
    """Every endpoint's :class:`ViewPolicy`, built when serving starts."""

    def __init__(self) -> None:
        self.rows: dict[str, ViewPolicy] = {}
        self.unrouted = ViewPolicy(endpoint=None)

    def build(self, app: Quart) -> None:
        for endpoint, view in app.view_functions.items():
            _refuse_method_decorators(endpoint, view)
        self.rows = {
            endpoint: ViewPolicy.of(endpoint, view, app)
            for endpoint, view in app.view_functions.items()
        }

    def row(self, endpoint: str | None) -> ViewPolicy:
        """The row of ``endpoint``; a route added after start-up gets one on first use."""
        if endpoint is None:
            return self.unrouted
        found = self.rows.get(endpoint)
        if found is None:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            found = ViewPolicy.of(endpoint, app.view_functions.get(endpoint), app)
            self.rows[endpoint] = found
        return found

    def current(self) -> ViewPolicy:
        """The row of the request (or WebSocket) being handled."""
        return self.row(current_connection().endpoint)
