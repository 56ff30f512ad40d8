"""Type aliases shared by the production layer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Header pairs as ASGI carries them: lower-case names, raw values.
RawHeaders = list[tuple[bytes, bytes]]

#: A view function, as the per-view policy decorators take and return it.
ViewT = TypeVar("ViewT", bound=Callable[..., Any])

#: A readiness check: raises when the dependency makes the app unusable; returns
#: ``None``, or a note when it is degraded but the app still serves.
ReadinessCheck = Callable[[], Awaitable[str | None]]
