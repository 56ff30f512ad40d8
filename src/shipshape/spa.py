"""The serving blueprint: a built single-page frontend, served before Quart runs.

The build (Vite's ``dist/``) is read once, at start-up:

* ``index.html`` is split where each response's nonce goes (every
  ``<script>``, every ``<style>``, stylesheet and preload ``<link>``, and any
  ``nonce="…"`` placeholder such as Vite's ``html.cspNonce`` meta) and where
  the CSRF token goes (``<meta name="csrf-token">`` before ``</head>``);
* every other file joins a table made by :func:`shipshape.static.scan`, so
  build files are served exactly like the server-rendered assets (strong
  ETags, ``Range``, the best precompressed sibling, no way out of the folder);
  everything under the assets folder is immutable, since Vite puts a content
  hash in every name there;
* a missing or broken build (no index, an index that names a file the build
  lacks, or a ``base`` that is not the mount) raises :class:`SPAError`, whose
  one line names the command that builds it.

A request under the mount is then answered by the first rule that fits:

1. a file of the build: that file;
2. a path with a file extension, under the assets folder, with a ``..`` or
   ``.`` segment, a backslash or a control character: 404, never the index
   (a missing chunk must fail loudly, so the frontend can recover);
3. a GET or HEAD *navigation*: the index, with the page profile's security
   headers, a fresh nonce, a CSRF token bound to the session cookie,
   ``Cache-Control: no-cache, private``, compressed like any dynamic page;
4. another GET or HEAD (a script's ``fetch``, an API client): 404, JSON for
   JSON clients; any other method: 405.

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

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from quart import Quart
from werkzeug.exceptions import HTTPException, NotFound

from shipshape.bundling import precompress
from shipshape.compression import CompressionMiddleware
from shipshape.csp import new_nonce
from shipshape.csrf import SESSION_KEY, mask, new_secret, secret_from
from shipshape.exceptions import ShipshapeError
from shipshape.options import Option, apply, is_path, is_text
from shipshape.responses import MESSAGES, accepts_html, error
from shipshape.scope import header, request_host
from shipshape.sessions import CookieSessions
from shipshape.static import IMMUTABLE, StaticFile, StaticFiles, scan
from shipshape.typing import ASGIApp, RawHeaders, Receive, Scope, Send

if TYPE_CHECKING:
    from shipshape.headers import SecurityHeaders


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
_NONCE = "\x00nonce\x00"  # cannot occur in HTML text
_CSRF_SLOT = "\x00csrf\x00"
_SLOT_RE = re.compile("(\x00nonce\x00|\x00csrf\x00)")
_TAG_RE = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)(\s[^>]*?)?(/?)>")
_NONCE_ATTR_RE = re.compile(r"""\snonce\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+)""", re.IGNORECASE)
_REL_RE = re.compile(r"""\brel\s*=\s*["']?([^"'>]+)""", re.IGNORECASE)
_URL_RE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_LOADED_RE = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)  # what the page loads
_HEAD_END_RE = re.compile(r"</head\s*>", re.IGNORECASE)
_NONCED_RELS = frozenset({"stylesheet", "modulepreload", "preload"})
# A segment "." or "..", a backslash, an empty segment or a control character:
# never a route of the frontend, so never the index (and never a file: only
# names the scan found are files).
_ODD_PATH_RE = re.compile(r"(^|/)\.\.?(/|$)|\\|//|^/|[\x00-\x1f\x7f]")


class SPAError(ShipshapeError, RuntimeError):
    """The frontend build is missing or broken; the message names the command that builds it."""


@dataclass(frozen=True)
class Index:
    """``index.html`` in pieces: text, and the slots for the nonce and the CSRF token."""

    parts: tuple[str, ...]

    def render(self, nonce: str, token: str) -> bytes:
        fill = {_NONCE: nonce, _CSRF_SLOT: token}
        return "".join([fill.get(part, part) for part in self.parts]).encode()


@dataclass(frozen=True)
class Build:
    """A frontend build read once: its index and its file table."""

    index: Index
    files: dict[str, StaticFile]


def prepare_index(html: str, *, csrf: bool) -> Index:
    """Split ``html`` where each response's nonce and CSRF token go."""

    nonce_attr = f' nonce="{_NONCE}"'

    def tag(match: re.Match[str]) -> str:
        name, attrs, close = match[1].lower(), match[2] or "", match[3]
        if _NONCE_ATTR_RE.search(attrs):
            return f"<{match[1]}{_NONCE_ATTR_RE.sub(nonce_attr, attrs)}{close}>"
        rel = _REL_RE.search(attrs) if name == "link" else None
        rels = set(rel[1].lower().split()) if rel is not None else set()
        if name in ("script", "style") or rels & _NONCED_RELS:
            return f"<{match[1]}{attrs}{nonce_attr}{close}>"
        return match[0]

    text = _TAG_RE.sub(tag, html)
    if csrf:
        text = _HEAD_END_RE.sub(
            lambda m: f'<meta name="csrf-token" content="{_CSRF_SLOT}">\n{m[0]}', text, count=1
        )
    return Index(tuple(part for part in _SLOT_RE.split(text) if part))


def load_build(
    root: Path, *, mount: str, assets: str, command: str, csrf: bool, memory_limit: int
) -> Build:
    """Read the build in ``root``; :class:`SPAError` when it is missing or broken."""
    index_path = root / "index.html"
    try:
        html = index_path.read_text("utf-8")
    except FileNotFoundError:
        raise SPAError(f"frontend build {index_path} is missing: run `{command}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SPAError(
            f"frontend build {index_path} is unreadable ({exc}): run `{command}`"
        ) from exc
    if csrf and not _HEAD_END_RE.search(html):
        raise SPAError(f"frontend build {index_path} has no </head>: run `{command}`")
    files = {
        key: entry
        for key, entry in scan(root, memory_limit=memory_limit).items()
        if key != "index.html" and not any(part.startswith(".") for part in key.split("/"))
    }
    for key, entry in files.items():
        if key.startswith(assets + "/"):
            entry.cache_control = IMMUTABLE  # Vite names every file there by its content hash
    prefix = "/" if mount == "/" else mount + "/"
    for url in (found[1] for tag in _LOADED_RE.findall(html) for found in _URL_RE.finditer(tag)):
        if url.startswith(("http:", "https:", "//", "data:", "#")):
            continue
        path = url.split("#", 1)[0].split("?", 1)[0]
        if not path.startswith(prefix):
            raise SPAError(
                f"frontend build {index_path} links {url}, outside the mount {prefix}: "
                f"build it with base {prefix} (`{command}`)"
            )
        if path[len(prefix) :] not in files:
            raise SPAError(
                f"frontend build {index_path} links {url}, which is not in the build: "
                f"run `{command}`, with base {prefix}"
            )
    return Build(prepare_index(html, csrf=csrf), files)


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
        compression: wraps the index in the app's dynamic compression, or ``None``.
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
        self.build = load_build(
            root, mount=mount, assets=assets, command=command, csrf=csrf, memory_limit=memory_limit
        )
        # The file responder: the static machinery itself, over this build's table.
        self.files = StaticFiles(
            app, root=root, prefix=self.prefix, headers=file_headers, hsts=hsts,
            files=self.build.files,
        )  # fmt: skip
        self.sessions = CookieSessions(quart) if csrf else None
        self.page_headers = list(page_headers)
        self.error_headers: RawHeaders = [
            (name, value)
            for name, value in self.files.extra
            if name not in (b"content-security-policy", b"x-content-type-options")
        ]
        self.hsts = hsts.encode() if hsts else None
        self.index_app: ASGIApp = compression(self.send_index) if compression else self.send_index
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
        name = rest.rsplit("/", 1)[-1]
        is_file = "." in name and name != "index.html"
        if (
            is_file
            or rest == self.assets[:-1]
            or rest.startswith(self.assets)
            or _ODD_PATH_RE.search(rest)
            or not is_navigation(scope)
        ):
            await self.refuse(scope, send, 404, "not_found")
            return
        await self.index_app(scope, receive, send)

    def passes_through(self, path: str) -> bool:
        return any(path == p.rstrip("/") or path.startswith(p) for p in self.passthrough)

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
        if self.hsts is not None and scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", self.hsts))
        await error(
            scope, send, status, code, MESSAGES[status], api_prefix=self.api_prefix, headers=headers
        )

    async def send_index(self, scope: Scope, receive: Receive, send: Send) -> None:
        nonce = new_nonce()
        headers: RawHeaders = [
            (b"content-type", HTML),
            (b"cache-control", NO_CACHE),
            # The same URL is a 404 to a fetch, so a cache must not answer one with the
            # other; and the CSRF token in the page is the session cookie's.
            (
                b"vary",
                b"Sec-Fetch-Dest, Accept, Cookie" if self.sessions else b"Sec-Fetch-Dest, Accept",
            ),
            *[
                (name, value.replace(b"{nonce}", nonce.encode()))
                for name, value in self.page_headers
            ],
        ]
        if self.hsts is not None and scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", self.hsts))
        token = ""
        if self.sessions is not None:
            token = self.csrf_token(scope, headers)
        body = self.build.index.render(nonce, token)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body}
        )

    def csrf_token(self, scope: Scope, headers: RawHeaders) -> str:
        """A masked token for the session in the request's cookie; a new session sets one."""
        sessions = self.sessions
        if sessions is None:  # pragma: no cover - only called with CSRF on
            raise RuntimeError("no sessions")
        data = sessions.load(header(scope, b"cookie"))
        secret = secret_from(data.get(SESSION_KEY))
        if secret is None:
            secret = new_secret()
            data[SESSION_KEY] = secret.hex()
            headers.append((b"set-cookie", sessions.set_cookie(data)))
        return mask(secret)


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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shipshape.spa precompress DIR``: the build's precompressed siblings."""
    parser = argparse.ArgumentParser(prog="python -m shipshape.spa")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("precompress", help="write .br, .gz and .zst siblings")
    command.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    done = precompress(args.folder, echo=print, skip={"index.html"})
    print(f"precompressed {sum(1 for sizes in done.values() if sizes)} of {len(done)} files")
    return 0


if __name__ == "__main__":  # pragma: no cover - main() is tested; this only calls it
    sys.exit(main())
