"""The order of every step a request goes through, written down once.

Byte-level steps are ASGI middleware, wrapped around Quart by
:meth:`shipshape.Shipshape.init_app` in the order of :data:`ASGI_LAYERS`
(outermost first). Request-level steps are hooks that features register here
by name; :class:`Pipeline` runs them in the order of :data:`BEFORE_VIEW` and
:data:`AFTER_VIEW`, whatever order the features were set up in, and hands
each the request's :class:`~shipshape.policy.ViewPolicy` row.

The cheapest refusal comes first: a request from a client over its limit is
refused before CSRF reads its body. ``docs/architecture.md`` draws the whole
pipeline and says where a new feature plugs in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from quart import Quart, Response

from shipshape.policy import PolicyTable, ViewPolicy

#: ASGI middleware, outermost first; each sees what the ones above resolved.
ASGI_LAYERS = (
    "proxy",  # client, scheme and host from trusted X-Forwarded-* (shipshape.proxy)
    "request_log",  # request id, one log line per response (shipshape.logging)
    "host_check",  # Host allow-list, 400 (shipshape.hosts)
    "https_redirect",  # plain HTTP to HTTPS, 301/308 (shipshape.https)
    "static",  # built files, precompressed at build time (shipshape.static)
    "spa",  # the single-page frontend's index and build, never rate-limited (shipshape.spa)
    "rate_limit",  # 429 before Quart runs, for rules keyed by address (shipshape.ratelimit)
    "compression",  # dynamic responses (shipshape.compression)
    "security_headers",  # the headers the after-view step chose (shipshape.headers)
    "request_body",  # 400/415: raw query bytes; a body zipped, typed twice, cut (shipshape.request)
)
#: Request hooks before the view, in order: the cheapest refusal first.
BEFORE_VIEW = (
    "rate_limit",  # 429 for rules with a key function of their own (shipshape.ratelimit)
    "csrf",  # 400 before the view runs (shipshape.csrf)
)
#: Response hooks after the view (and after an error page), in order.
AFTER_VIEW = (
    "rate_limit_headers",  # RateLimit, RateLimit-Policy (shipshape.ratelimit)
    "security_headers",  # the profile's headers and nonce (shipshape.headers)
)

EXTENSION_KEY = "shipshape.pipeline"

BeforeHook = Callable[[ViewPolicy], Awaitable[None]]
AfterHook = Callable[[ViewPolicy, Response], Awaitable[Response]]


class Pipeline:
    """Runs the registered request hooks in their stated order.

    Arguments:
        app: the app whose requests go through the hooks.
    """

    def __init__(self, app: Quart) -> None:
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("this app already has a pipeline: use Pipeline.of(app)")
        app.extensions[EXTENSION_KEY] = self
        self.policies = PolicyTable()
        self._before: dict[str, BeforeHook] = {}
        self._after: dict[str, AfterHook] = {}
        self._before_hooks: tuple[BeforeHook, ...] = ()
        self._after_hooks: tuple[AfterHook, ...] = ()
        app.before_serving(self._build_policies)
        app.before_request(self.before_view)
        app.before_websocket(self.before_view)  # a handshake is limited and checked as a request
        app.after_request(self.after_view)
        self._app = app

    @classmethod
    def of(cls, app: Quart) -> Pipeline:
        """The app's pipeline, created on first use; every feature shares it."""
        found: Pipeline | None = app.extensions.get(EXTENSION_KEY)
        return found if found is not None else cls(app)

    async def _build_policies(self) -> None:
        self.policies.build(self._app)

    def before(self, step: str, hook: BeforeHook) -> None:
        """Run ``hook`` at ``step``, one of :data:`BEFORE_VIEW`; it raises to refuse."""
        _check(step, BEFORE_VIEW, self._before)
        self._before[step] = hook
        self._before_hooks = tuple(self._before[s] for s in BEFORE_VIEW if s in self._before)

    def after(self, step: str, hook: AfterHook) -> None:
        """Run ``hook`` at ``step``, one of :data:`AFTER_VIEW`, on every response."""
        _check(step, AFTER_VIEW, self._after)
        self._after[step] = hook
        self._after_hooks = tuple(self._after[s] for s in AFTER_VIEW if s in self._after)

    @property
    def order(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The registered steps, before and after the view, in the order they run."""
        return (
            tuple(s for s in BEFORE_VIEW if s in self._before),
            tuple(s for s in AFTER_VIEW if s in self._after),
        )

    async def before_view(self) -> None:
        if self._before_hooks:
            policy = self.policies.current()
            for hook in self._before_hooks:
                await hook(policy)

    async def after_view(self, response: Response) -> Response:
        if self._after_hooks:
            policy = self.policies.current()
            for hook in self._after_hooks:
                response = await hook(policy, response)
        return response


def _check(step: str, known: tuple[str, ...], taken: Mapping[str, object]) -> None:
    if step not in known:
        raise ValueError(f"unknown pipeline step {step!r}; the steps are {known}")
    if step in taken:
        raise ValueError(f"pipeline step {step!r} already has a hook")
