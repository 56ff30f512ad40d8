"""Content Security Policy: policies, their header values, and per-request nonces.

A :class:`Policy` is an immutable list of directives. It is rendered to a
header template once, at start-up; a response then costs one string
replacement to put its nonce in. The default HTML policy starts from
``default-src 'none'`` and allows only what the pages use (CSP Level 3,
https://www.w3.org/TR/CSP3/): stricter than ``default-src 'self'``, and no
``'unsafe-inline'`` anywhere.

Nonces are 128 bits from :mod:`secrets` (CSP3 §7.1 asks for at least 128),
fresh for every HTML response, and reach templates as ``csp_nonce()``.

Per-view decorators only set attributes::

    @csp_extend(img_src=["https://images.example"])
    async def gallery(): ...

    @csp_exempt
    async def legacy_page(): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from quart import g

from shipshape.policy import set_columns, view_columns
from shipshape.randomness import token_urlsafe
from shipshape.typing import ViewT

NONCE = "'nonce-{nonce}'"  # placeholder replaced per response
NONCE_BYTES = 16  # 128 bits

Sources = tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """An ordered, immutable set of CSP directives."""

    directives: tuple[tuple[str, Sources], ...]

    @classmethod
    def of(cls, directives: Mapping[str, Iterable[str]]) -> Policy:
        return cls(tuple((_name(k), tuple(v)) for k, v in directives.items()))

    def as_dict(self) -> dict[str, Sources]:
        return dict(self.directives)

    def extend(self, **directives: Iterable[str]) -> Policy:
        """Add sources to directives (``img_src=[...]``), creating missing ones."""
        merged = self.as_dict()
        for key, sources in directives.items():
            name = _name(key)
            current = merged.get(name, ())
            if current == ("'none'",):
                current = ()
            merged[name] = current + tuple(s for s in sources if s not in current)
        return Policy.of(merged)

    def replace(self, **directives: Iterable[str] | None) -> Policy:
        """Replace whole directives; ``None`` removes one."""
        merged = self.as_dict()
        for key, sources in directives.items():
            if sources is None:
                merged.pop(_name(key), None)
            else:
                merged[_name(key)] = tuple(sources)
        return Policy.of(merged)

    @property
    def uses_nonce(self) -> bool:
        return any(NONCE in sources for _, sources in self.directives)

    def unsafe_sources(self) -> list[str]:
        """``'unsafe-inline'``/``'unsafe-eval'`` found, as ``directive source`` strings."""
        return [
            f"{name} {source}"
            for name, sources in self.directives
            for source in sources
            if source in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'")
        ]

    def render(self) -> str:
        """The header value, with ``{nonce}`` left to fill in per response."""
        return "; ".join(f"{name} {' '.join(s)}".strip() for name, s in self.directives)

    def render_for_page(self, *, report_path: str | None, upgrade: bool) -> str:
        """The header value for an HTML page: with reporting, and upgrades when asked.

        ``upgrade`` (production) fetches any ``http://`` subresource left in a
        page over HTTPS. ``report_path`` adds ``report-uri`` for older browsers
        and ``report-to csp`` for current ones (CSP3 §6.5), which the page's
        ``Reporting-Endpoints: csp="…"`` header names.
        """
        extra: list[tuple[str, Sources]] = []
        if upgrade:
            extra.append(("upgrade-insecure-requests", ()))
        if report_path:
            extra += [("report-uri", (report_path,)), ("report-to", ("csp",))]
        return Policy(self.directives + tuple(extra)).render()


def _name(key: str) -> str:
    return key.replace("_", "-").lower()


HTML_POLICY = Policy.of(
    {
        "default-src": ["'none'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
)
# JSON and other non-HTML responses load nothing and must not be framed.
API_POLICY = Policy.of({"default-src": ["'none'"], "frame-ancestors": ["'none'"]})


def new_nonce() -> str:
    """A fresh nonce, for a response made outside Quart (the single-page index)."""
    return token_urlsafe(NONCE_BYTES)


def csp_nonce() -> str:
    """This request's nonce, created on first use; the CSP header carries the same."""
    nonce: str | None = g.get("_shipshape_csp_nonce")
    if nonce is None:
        nonce = new_nonce()
        g._shipshape_csp_nonce = nonce
    return nonce


def _set(view: ViewT, change: Callable[[Policy], Policy | None]) -> ViewT:
    previous: Callable[[Policy], Policy | None] | None = view_columns(view).get("csp_change")

    def combined(policy: Policy) -> Policy | None:
        base = previous(policy) if previous is not None else policy
        return None if base is None else change(base)

    return set_columns(view, csp_change=combined)


def csp_extend(**directives: Iterable[str]) -> Callable[[ViewT], ViewT]:
    """Add sources to this view's policy: ``@csp_extend(img_src=["https://cdn.example"])``."""
    return lambda view: _set(view, lambda policy: policy.extend(**directives))


def csp_replace(**directives: Iterable[str] | None) -> Callable[[ViewT], ViewT]:
    """Replace directives of this view's policy; ``None`` removes one."""
    return lambda view: _set(view, lambda policy: policy.replace(**directives))


def csp_exempt(view: ViewT) -> ViewT:
    """Send no CSP for this view. ``check --deploy`` cannot see it: use sparingly."""
    return _set(view, lambda policy: None)
