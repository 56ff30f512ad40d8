"""Tiny inline apps for unit tests of the production layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from quart import Quart

from shipshape import Shipshape
from shipshape.bundling import Bundle
from shipshape.typing import ASGIApp, Message, Receive, Scope, Send

MakeApp = Callable[..., Quart]
#: A default limit no test reaches, for tests about something else.
UNLIMITED = "100000/second"

#: Bundles over the ``sources`` fixture's files.
BUNDLES = (
    Bundle("site.css", ("css/*.css",)),
    Bundle("app.js", ("js/app.js",)),
    Bundle("lib.js", ("vendor/lib.min.js",), minify=False),
)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """Real fixture files for the asset build: two stylesheets, a script, a vendor file."""
    root = tmp_path / "src"
    (root / "css").mkdir(parents=True)
    (root / "js").mkdir()
    (root / "vendor").mkdir()
    (root / "css" / "b.css").write_text("/* b */\n.b {  color : red ; }\n")
    (root / "css" / "a.css").write_text(".a {\r\n  margin: 0 ;\r\n}\n")
    (root / "js" / "app.js").write_text("// note\nvar  x = 1 ;\nfunction f ( y ) { return y }\n")
    (root / "vendor" / "lib.min.js").write_text("var lib=1;\n//# sourceMappingURL=lib.min.js.map\n")
    return root


@pytest.fixture
def make_app(tmp_path: Any) -> MakeApp:
    def factory(**config: Any) -> Quart:
        app = Quart(__name__, static_folder=None)
        app.config.update(
            {
                "APP_ENV": "testing",
                "SHIPSHAPE_ASSET_DIR": str(tmp_path),
                # Unit tests send bursts; the default limits have tests of their own.
                "RATELIMIT_DEFAULT": UNLIMITED,
                **config,
            }
        )
        Shipshape(app)
        return app

    return factory


@dataclass
class Exchange:
    """What an ASGI app answered, and the scope the innermost app saw."""

    status: int
    headers: dict[str, str]
    body: bytes
    seen: Scope | None
    #: The header list as sent, the very object (a test may change it).
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def recorder() -> tuple[ASGIApp, list[Scope]]:
    """An inner ASGI app that records its scope and answers 200 ``ok``."""
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return inner, seen


async def asgi_call(
    app: ASGIApp,
    seen: list[Scope],
    *,
    path: str = "/",
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    scheme: str = "http",
    client: tuple[str, int] | None = ("192.0.2.1", 40000),
    query: bytes = b"",
    scope_type: str = "http",
) -> Exchange:
    scope: Scope = {
        "type": scope_type,
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "scheme": scheme,
        "client": client,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers or []],
    }
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    before = len(seen)
    await app(scope, receive, send)
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return Exchange(
        status=start["status"] if start else 0,
        headers={k.decode(): v.decode() for k, v in (start or {}).get("headers", [])},
        body=body,
        seen=seen[-1] if len(seen) > before else None,
        raw_headers=(start or {}).get("headers", []),
    )


def asgi_of(app: Quart) -> ASGIApp:
    """The app's ASGI callable with Shipshape's middleware, as a server calls it."""
    return cast(ASGIApp, app.asgi_app)


def http_scope(
    method: str, path: str, headers: list[tuple[bytes, bytes]], client: str = "192.0.2.7"
) -> Scope:
    """A complete HTTP scope, as a server builds it for Quart."""
    return {
        "type": "http",
        "http_version": "1.1",
        "asgi": {"spec_version": "2.3"},
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": (client, 1234),
        "server": ("127.0.0.1", 5000),
        "extensions": {},
    }


#: The fixture build's files, as Vite names them (8-character content hashes under assets/).
SPA_SCRIPT = "assets/index-Bq3xK9aZ.js"
SPA_CHUNK = "assets/things-C4mPq1xY.js"
SPA_STYLE = "assets/index-D9eRt2uV.css"
SPA_SCRIPT_BODY = b"".join(b"export const thing%d = %d;\n" % (i, i) for i in range(300))


def write_spa_build(folder: Path, base: str = "/app/") -> Path:
    """A small frontend build like ``vite build`` makes, with its precompressed siblings."""
    from shipshape.bundling import precompress

    (folder / "assets").mkdir(parents=True)
    (folder / ".vite").mkdir()
    padding = "".join(
        f"<!-- {i:03d} keeps the index above the compression minimum -->\n" for i in range(12)
    )
    (folder / "index.html").write_text(
        '<!doctype html>\n<html lang="en">\n  <head>\n'
        '    <meta charset="UTF-8" />\n'
        '    <meta property="csp-nonce" nonce="PLACEHOLDER" />\n'
        f'    <link rel="icon" type="image/svg+xml" href="{base}favicon.svg" />\n'
        f'    <link rel="manifest" href="{base}manifest.webmanifest" />\n'
        "    <title>Things</title>\n"
        f'    <script type="module" crossorigin src="{base}{SPA_SCRIPT}"></script>\n'
        f'    <link rel="modulepreload" crossorigin href="{base}{SPA_CHUNK}">\n'
        f'    <link rel="stylesheet" crossorigin href="{base}{SPA_STYLE}">\n'
        "    <style>#app{min-height:100vh}</style>\n"
        f"{padding}"
        '  </HEAD>\n  <body>\n    <div id="app"></div>\n  </body>\n</html>\n',
        encoding="utf-8",
    )
    (folder / SPA_SCRIPT).write_bytes(SPA_SCRIPT_BODY)
    (folder / SPA_CHUNK).write_bytes(b"export const chunk = 1;\n")
    (folder / SPA_STYLE).write_bytes(b"body{margin:0}\n" * 60)
    (folder / "favicon.svg").write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / "manifest.webmanifest").write_text('{"name": "Things", "start_url": "/app/"}')
    (folder / "robots.txt").write_text("User-agent: *\nDisallow:\n")
    (folder / "service-worker.js").write_text("self.addEventListener('fetch', () => {});\n")
    (folder / "logo-0123456789abcdef.png").write_bytes(b"\x89PNG fake")
    (folder / ".vite" / "manifest.json").write_text("{}")
    secret = folder.parent / "secret.txt"
    secret.write_text("top secret")
    (folder / "leak.txt").symlink_to(secret)
    precompress(folder)
    return folder


@pytest.fixture
def spa_build(tmp_path: Path) -> Path:
    return write_spa_build(tmp_path / "dist")
