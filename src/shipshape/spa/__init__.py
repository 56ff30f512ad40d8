"""The serving blueprint (DESIGN.md's name for it; an ASGI layer, not a Quart
``Blueprint``): a built single-page frontend, served before Quart runs.

The build (Vite's ``dist/``) is read once, at start-up, by
:mod:`shipshape.spa_build`: the index split where each response's nonce and
CSRF token go, and every other file in a table that the static machinery
serves (strong ETags, ``Range``, the best precompressed sibling, no way out
of the folder; the assets folder immutable). A missing or broken build
stops start-up with :class:`SPAError`, whose one line names the command
that builds it.

A request under the mount is then answered by the first rule that fits:

1. a file of the build: that file;
2. a method other than GET and HEAD: 405;
3. a path with a file extension, under the assets folder, with a ``..`` or
   ``.`` segment, a backslash or a control character: 404, never the index
   (a missing chunk must fail loudly, so the frontend can recover);
4. a *navigation*: the index, with the page profile's security headers, a
   fresh nonce, a CSRF token bound to the session cookie,
   ``Cache-Control: no-cache, private``, compressed once at start-up in
   every coding, with each response's nonce and token spliced in
   (:mod:`shipshape.compression.slots`);
5. anything else (a script's ``fetch``, an API client): 404, JSON for JSON
   clients.

A navigation is a request whose ``Sec-Fetch-Dest`` is ``document`` or
``iframe`` (Fetch Metadata, https://www.w3.org/TR/fetch-metadata/); a client
that sends no fetch metadata navigates when its ``Accept`` names
``text/html``. Paths that one of the app's routes matches, and paths under
the API prefix, are left to Quart, so the mount can be ``/`` beside
server-rendered pages. Nothing here is rate-limited: the layer sits before
the rate-limit layer (``shipshape.pipeline.ASGI_LAYERS``)::

    app.config.update(SHIPSHAPE_SPA_DIR="frontend/dist", SHIPSHAPE_SPA_MOUNT="/app")
    Shipshape(app)

``python -m shipshape.spa precompress frontend/dist`` writes the build's
precompressed siblings with the asset pipeline's compressor
(:func:`shipshape.bundling.precompress`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from quart import Quart
from werkzeug.exceptions import HTTPException, NotFound

from shipshape.compression import CompressionMiddleware, accept_encoding, choose
from shipshape.csp import new_nonce
from shipshape.csrf import SESSION_KEY, mask, new_secret, secret_from
from shipshape.options import Option, apply, is_path, is_text
from shipshape.responses import accept_items, error
from shipshape.scope import header, request_host
from shipshape.sessions import CookieSessions
from shipshape.spa.fresh import FreshSessions
from shipshape.spa_build import (
    Build,
    Index,
    SlottedIndex,
    SPAError,
    load_build,
    main,
    prepare_index,
)
from shipshape.static import StaticFiles
from shipshape.typing import ASGIApp, RawHeaders, Receive, Scope, Send

if TYPE_CHECKING:
    from shipshape.headers import SecurityHeaders

__all__ = [
    "NAVIGATION_DESTS", "OPTIONS", "Build", "Index", "SPAError", "SPAMiddleware", "accepts_html",
    "is_navigation", "load_build", "main", "middleware", "prepare_index",
]  # fmt: skip


def _is_build_dir(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | Path):
        raise ValueError("not a folder")
    return str(value)


def _is_mount(value: object) -> str:
    """``/app``, ``/app/`` or ``/``, kept without its trailing slash (``/`` stays)."""
    path = is_path(value)
    if "//" in path or any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError("not a mount")
    return path.rstrip("/") or "/"


def _is_folder_name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", value):
        raise ValueError("not a folder name")
    return value


OPTIONS: tuple[Option, ...] = (
    Option(
        "SHIPSHAPE_SPA_DIR",
        None,
        "a folder, or `None` for no frontend",
        "the single-page frontend's build (Vite's `dist/`), served at `SHIPSHAPE_SPA_MOUNT`",
        _is_build_dir,
    ),
    Option(
        "SHIPSHAPE_SPA_MOUNT",
        "/",
        "a path such as `/app`, or `/`",
        "where the frontend is served; the app's own routes and `SHIPSHAPE_API_PREFIX` win",
        _is_mount,
    ),
    Option(
        "SHIPSHAPE_SPA_ASSETS",
        "assets",
        "a folder name inside the build",
        "the build's hashed files (Vite's `build.assetsDir`): immutable, never the index",
        _is_folder_name,
    ),
    Option(
        "SHIPSHAPE_SPA_BUILD_COMMAND",
        "npm run build",
        "a command, as text",
        "the command that makes the build; a missing or broken build's error names it",
        is_text,
    ),
)

NAVIGATION_DESTS = frozenset({"document", "iframe"})
NO_CACHE = b"no-cache, private"  # revalidate every time; a per-session token: no shared cache
HTML = b"text/html; charset=utf-8"
_CONTROL_OR_BACKSLASH_RE = re.compile(r"[\x00-\x1f\x7f\\]")


def is_odd_path(rest: str) -> bool:
    """A segment ``.`` or ``..``, a backslash, an empty segment or a control character in
    ``rest`` (a path under the mount): never a route of the frontend, so never the index
    (and never a file: only names the scan found are files). Substring tests and one
    character class, not one pattern with anchored alternatives, which searched every
    deep link in 1.5 µs against 0.3 (a test compares the two on random paths)."""
    if rest.startswith("/") or "//" in rest or _CONTROL_OR_BACKSLASH_RE.search(rest):
        return True
    if "." not in rest:
        return False
    wrapped = f"/{rest}/"
    return "/./" in wrapped or "/../" in wrapped


@lru_cache(maxsize=256)
def accepts_html(accept: str) -> bool:
    """Whether ``accept`` names ``text/html`` itself (not ``*/*``) with a non-zero q-value
    (cached, as clients send few distinct values)."""
    return any(media == "text/html" and q > 0 for media, q in accept_items(accept))


def is_navigation(scope: Scope) -> bool:
    """A browser loading a page: Fetch Metadata when sent, else ``Accept: text/html``."""
    dest = header(scope, b"sec-fetch-dest")
    if dest is not None:
        return dest.strip().lower() in NAVIGATION_DESTS
    accept = header(scope, b"accept")
    return accept is not None and accepts_html(accept)


class SPAMiddleware:
    """Serves a frontend build under ``mount``; see the module docstring.

    Arguments:
        app: the ASGI app to wrap.
        root: the build folder (read once, now).
        mount: the URL path, ``/app`` or ``/``.
        assets: the build's folder of hashed files.
        command: the command that builds it, for the start-up error.
        quart: the Quart app: its routes win over the frontend's, and its
            session cookie carries the CSRF secret.
        csrf: put a CSRF token in the index (``<meta name="csrf-token">``).
        page_headers: the index's security headers, ``{nonce}`` to be filled in.
        file_headers: the static profile's headers, for build files and errors.
        hsts: ``Strict-Transport-Security`` for HTTPS responses.
        compression: wraps the index in the app's dynamic compression, or ``None``;
            the index is also compressed once, in the layer's codings, and that is
            what a GET or HEAD gets when its coding's start-up check passed.
        api_prefix: paths left to the app, whose errors are JSON.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        root: Path,
        mount: str = "/",
        assets: str = "assets",
        command: str = "npm run build",
        quart: Quart,
        csrf: bool = True,
        page_headers: Sequence[tuple[bytes, bytes]] = (),
        file_headers: Sequence[tuple[str, str]] = (),
        hsts: str | None = None,
        compression: Callable[[ASGIApp], ASGIApp] | None = None,
        api_prefix: str = "/api/",
        static_prefix: str = "",
        memory_limit: int = 1024 * 1024,
    ) -> None:
        self.app = app
        self.quart = quart
        self.mount = mount
        self.prefix = "/" if mount == "/" else mount + "/"
        self.assets = assets + "/"
        self.api_prefix = api_prefix
        # Paths that belong to the app even where no route matches them (a mount
        # at / must not answer /api or /static/missing with the index).
        self.passthrough = tuple(p for p in (api_prefix, static_prefix) if p)
        self._passthrough_exact = frozenset(p.rstrip("/") for p in self.passthrough)
        self.build = load_build(
            root, mount=mount, assets=assets, command=command, csrf=csrf, memory_limit=memory_limit
        )
        # The file responder: the static machinery itself, over this build's table.
        self.files = StaticFiles(
            app, root=root, prefix=self.prefix, headers=file_headers, hsts=hsts,
            files=self.build.files,
        )  # fmt: skip
        self.sessions = CookieSessions(quart) if csrf else None
        self.fresh = FreshSessions(self.sessions) if self.sessions is not None else None
        # The page's headers that hold no nonce are the same for every response.
        nonced = b"{nonce}"
        self._fixed_headers = [(n, v) for n, v in page_headers if nonced not in v]
        self._nonced_headers = [(n, v.split(nonced)) for n, v in page_headers if nonced in v]
        # The static profile's headers; responses.error sets the security ones itself.
        self.error_headers: RawHeaders = list(self.files.extra)
        self.hsts = hsts.encode() if hsts else None
        # The index compressed per response, for what the slotted bodies below do
        # not cover: identity, a coding whose start-up check failed, a 406.
        self.index_app: ASGIApp = compression(self.send_index) if compression else self.send_index
        # The index compressed once per coding, with the nonce and token filled in
        # per response (shipshape.compression.slots).
        self.codings: tuple[str, ...] = ()
        self.compressed: dict[str, SlottedIndex] = {}
        layer = self.index_app
        if isinstance(layer, CompressionMiddleware):
            nonce, token = new_nonce(), mask(new_secret()) if csrf else ""
            # An index too small to compress is sent as it is, as the layer would.
            if len(self.build.index.render(nonce, token)) >= layer.minimum_size:
                self.compressed = self.build.index.compressed(
                    layer.codings, nonce_size=len(nonce), token_size=len(token)
                )
            # Among the codings a client accepts equally, the smallest index: the
            # stored blocks and flushes cost zstd more than brotli (743 bytes against
            # 633 for the example's), and the CPU is the same.
            smallest = sorted(self.compressed, key=lambda coding: self.compressed[coding].size)
            self.codings = (*smallest, *(c for c in layer.codings if c not in self.compressed))
        self.compressed_vary = _vary(self.sessions is not None) + b", Accept-Encoding"
        self._routes_overlap: bool | None = None  # worked out on the first request

    def relative(self, path: str) -> str | None:
        """``path`` relative to the mount, or ``None`` when it is not under it."""
        if path == self.mount:
            return ""
        return path[len(self.prefix) :] if path.startswith(self.prefix) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        rest = self.relative(path) if path else None
        if rest is None or self.passes_through(path) or self.routed(scope):
            await self.app(scope, receive, send)
            return
        entry = self.build.files.get(rest)
        if entry is not None:
            await self.files.serve(scope, entry, send)
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await self.refuse(scope, send, 405, "method_not_allowed", [(b"allow", b"GET, HEAD")])
            return
        name = rest.rstrip("/").rsplit("/", 1)[-1]  # "missing.js/" names a file too
        is_file = "." in name and name != "index.html"
        if (
            is_file
            or rest == self.assets[:-1]
            or rest.startswith(self.assets)
            or is_odd_path(rest)
            or not is_navigation(scope)
        ):
            await self.refuse(scope, send, 404, "not_found")
            return
        if self.compressed:  # HEAD too: the headers a GET would get
            compressed = self.compressed.get(choose(accept_encoding(scope), self.codings) or "")
            if compressed is not None:
                await self.send_compressed_index(scope, send, compressed)
                return
        await self.index_app(scope, receive, send)

    def passes_through(self, path: str) -> bool:
        return path.startswith(self.passthrough) or path in self._passthrough_exact

    def routed(self, scope: Scope) -> bool:
        """Whether one of the app's routes matches this path (for any method)."""
        if self._routes_overlap is None:
            self._routes_overlap = any(
                rule.rule == self.mount or rule.rule.startswith((self.prefix, "/<"))
                for rule in self.quart.url_map.iter_rules()
            )
        if not self._routes_overlap:
            return False
        try:
            adapter = self.quart.url_map.bind(
                request_host(scope), url_scheme=scope.get("scheme", "http")
            )
            adapter.match(scope.get("path", "/"), scope.get("method", "GET"))
        except NotFound:
            return False
        except HTTPException:  # 405, a redirect to the slashed URL: the route's own answer
            return True
        return True

    async def refuse(
        self, scope: Scope, send: Send, status: int, code: str, extra: RawHeaders | None = None
    ) -> None:
        headers = [*self.error_headers, *(extra or [])]
        await error(
            scope, send, status, code, api_prefix=self.api_prefix, headers=headers, hsts=self.hsts
        )

    async def send_index(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The index, as it is (the compression layer around it compresses it)."""
        nonce, token, headers = self.index_headers(scope, _vary(self.sessions is not None))
        body = self.build.index.render(nonce, token)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body}
        )

    async def send_compressed_index(
        self, scope: Scope, send: Send, compressed: SlottedIndex
    ) -> None:
        """The index compressed once, with this response's nonce and token: the bytes and
        headers the compression layer would send, without compressing the page again."""
        nonce, token, headers = self.index_headers(scope, self.compressed_vary)
        head = scope.get("method") == "HEAD"
        body = b"" if head else compressed.render(nonce, token)
        headers += [
            (b"content-encoding", compressed.coding.encode()),
            (b"content-length", str(compressed.size).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def index_headers(self, scope: Scope, vary: bytes) -> tuple[str, str, RawHeaders]:
        """A fresh nonce, the session's CSRF token, and the index's headers with both."""
        nonce = new_nonce()
        encoded = nonce.encode()
        headers: RawHeaders = [
            (b"content-type", HTML),
            (b"cache-control", NO_CACHE),
            (b"vary", vary),
            *self._fixed_headers,
            *[(name, encoded.join(pieces)) for name, pieces in self._nonced_headers],
        ]
        if self.hsts is not None and scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", self.hsts))
        token = ""
        if self.sessions is not None:
            token = self.csrf_token(scope, headers)
        return nonce, token, headers

    def csrf_token(self, scope: Scope, headers: RawHeaders) -> str:
        """A masked token for the session in the request's cookie; a new session sets one."""
        sessions, fresh = self.sessions, self.fresh
        if sessions is None or fresh is None:  # pragma: no cover - only called with CSRF on
            raise RuntimeError("no sessions")
        data = sessions.load(header(scope, b"cookie"))
        secret = secret_from(data.get(SESSION_KEY))
        if secret is None and not data:  # no session: a new one, made ahead (spa.fresh)
            cookie, token = fresh.take()
            headers.append((b"set-cookie", cookie))
            return token
        if secret is None:  # a session without a secret: the secret added to it
            secret = new_secret()
            data[SESSION_KEY] = secret.hex()
            headers.append((b"set-cookie", sessions.set_cookie(data)))
        return mask(secret)


def _vary(sessions: bool) -> bytes:
    # The same URL is a 404 to a fetch, so a cache must not answer one with the
    # other; and the CSRF token in the page is the session cookie's.
    return b"Sec-Fetch-Dest, Accept, Cookie" if sessions else b"Sec-Fetch-Dest, Accept"


def middleware(
    app: Quart, *, security: SecurityHeaders | None, api_prefix: str, static_prefix: str = ""
) -> Callable[[ASGIApp], ASGIApp] | None:
    """The layer for ``Shipshape._wrap_asgi``, from the app's settings; ``None`` when off."""
    apply(app, OPTIONS)
    config = app.config
    if config["SHIPSHAPE_SPA_DIR"] is None:
        return None
    mount = config["SHIPSHAPE_SPA_MOUNT"]
    for name, prefix in (("SHIPSHAPE_API_PREFIX", api_prefix), ("static files", static_prefix)):
        if prefix and prefix != "/" and (mount + "/").startswith(prefix):
            # Those requests pass to the app, so the frontend would never be served.
            raise SPAError(
                f"SHIPSHAPE_SPA_MOUNT {mount} is under {prefix} ({name}): mount it elsewhere"
            )
    page_headers: RawHeaders = []
    if security is not None:
        page_headers = security.profile_headers("spa")
    compression = None
    if config["SHIPSHAPE_COMPRESSION"]:
        compression = partial(
            CompressionMiddleware,
            minimum_size=config["SHIPSHAPE_COMPRESSION_MIN_SIZE"],
            levels=config["SHIPSHAPE_COMPRESSION_LEVELS"],
            api_prefix=api_prefix,
            hsts=security.hsts_bytes if security is not None else None,
        )
    return partial(
        SPAMiddleware,
        root=Path(config["SHIPSHAPE_SPA_DIR"]),
        mount=mount,
        assets=config["SHIPSHAPE_SPA_ASSETS"],
        command=config["SHIPSHAPE_SPA_BUILD_COMMAND"],
        quart=app,
        csrf=bool(config["SHIPSHAPE_CSRF"]),
        page_headers=page_headers,
        file_headers=security.static_headers() if security is not None else (),
        hsts=security.hsts if security is not None else None,
        compression=compression,
        api_prefix=api_prefix,
        static_prefix=static_prefix,
    )
