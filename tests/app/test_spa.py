"""The example frontend, as `make frontend` builds it with Vite, served at /app."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

import app as app_module
from app import PROJECT_ROOT, create_app
from app.__main__ import main
from shipshape.compression import decompress
from shipshape.csrf import unmask
from shipshape.spa import SPAError
from tests.conftest import Client, client_of
from tests.shipshape.conftest import write_spa_build

BUILD = PROJECT_ROOT / "frontend" / "dist"
NAVIGATE = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}
THING = "/app/things/0b9f3c1e-5d0a-4a8e-9f57-2c4d1e6b7a90"


def linked(html: str) -> list[str]:
    """The files the index makes the browser load."""
    return re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="(/app/[^"]+)"', html)


@pytest.mark.parametrize("path", ["/app", "/app/", "/app/things/new", THING, THING + "/edit"])
async def test_deep_links_get_the_built_index(client: Client, path: str) -> None:
    response = await client.get(path, headers=NAVIGATE)
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    csp = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    tags = re.findall(r"<script\b[^>]*>", html)
    assert tags, "Vite's entry script"
    assert all(f'nonce="{nonce[1]}"' in tag for tag in tags)
    assert "SHIPSHAPE_NONCE" not in html, "Vite's placeholder is replaced everywhere"
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert token is not None and unmask(token[1]) is not None
    assert response.headers["Cache-Control"] == "no-cache, private"


async def test_every_file_the_index_loads_is_served_immutable_and_precompressed(
    client: Client,
) -> None:
    html = await (await client.get("/app/", headers=NAVIGATE)).get_data(as_text=True)
    files = linked(html)
    assert any(f.endswith(".js") for f in files) and any(f.endswith(".css") for f in files)
    for url in files:
        if url == "/app/favicon.svg":
            continue
        response = await client.get(url, headers={"Accept-Encoding": "br, gzip"})
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Encoding"] == "br"
        body = decompress(await response.get_data(as_text=False), "br")
        assert body == (BUILD / url.removeprefix("/app/")).read_bytes()
    icon = await client.get("/app/favicon.svg")
    assert icon.status_code == 200 and icon.headers["Cache-Control"] == "no-cache"


async def test_the_lazy_view_chunks_exist_and_a_stale_one_is_a_404(client: Client) -> None:
    chunks = sorted(p.name for p in (BUILD / "assets").glob("*.js"))
    for view in ("list", "detail", "form", "missing"):
        assert any(name.startswith(view + "-") for name in chunks), view
    for name in chunks:
        assert (await client.get(f"/app/assets/{name}")).status_code == 200
    stale = await client.get("/app/assets/form-00000000.js", headers=NAVIGATE)
    assert stale.status_code == 404, "a chunk of an older deploy is never the index"
    api = await client.get("/app/things/new", headers={"Accept": "application/json"})
    assert api.status_code == 404 and (await api.get_json())["code"] == "not_found"


async def test_the_token_in_the_index_passes_the_csrf_check(client: Client) -> None:
    html = await (await client.get("/app/things/new", headers=NAVIGATE)).get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert token is not None
    thing = {"name": "From the index's token"}
    with_token = await client.post("/api/things", json=thing, headers={"X-CSRF-Token": token[1]})
    assert with_token.status_code == 201
    without = await client.post("/api/things", json={"name": "No token"})
    assert without.status_code == 400 and (await without.get_json())["code"] == "csrf_failed"


async def test_the_navbar_links_to_the_frontend(client: Client) -> None:
    html = await (await client.get("/")).get_data(as_text=True)
    assert '<a class="nav-link" href="/app/">Things app</a>' in html


@pytest.mark.parametrize("config", [{"SHIPSHAPE_SPA_DIR": None}, {"SHIPSHAPE_SPA_MOUNT": "/"}])
async def test_no_frontend_link_without_a_frontend_or_at_the_root(
    app_config: dict[str, Any], config: dict[str, Any], tmp_path: Path
) -> None:
    if config.get("SHIPSHAPE_SPA_MOUNT") == "/":  # a build made for the root
        config = {**config, "SHIPSHAPE_SPA_DIR": str(write_spa_build(tmp_path, base="/"))}
    app = create_app({**app_config, **config})
    async with app.test_app():
        html = await (await client_of(app).get("/")).get_data(as_text=True)
    assert "Things app" not in html
    assert 'href="/things/">Things</a>' in html


async def test_with_the_real_default_limit_page_loads_are_never_refused() -> None:
    """The example app's default is 2/second: a browser's burst of index loads all pass."""
    application = create_app({"APP_ENV": "testing"})
    async with application.test_app():
        client = client_of(application)
        loads = [
            (await client.get("/app/things/new", headers=NAVIGATE)).status_code for _ in range(10)
        ]
        assert loads == [200] * 10
        pages = [(await client.get("/privacy")).status_code for _ in range(3)]
        assert pages == [200, 200, 429], "the default limit is in force elsewhere"


def test_a_missing_build_stops_start_up_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SPAError, match=r"index\.html is missing: run `make frontend`$"):
        create_app({"APP_ENV": "testing", "SHIPSHAPE_SPA_DIR": str(tmp_path / "dist")})
    # python -m app, on a checkout whose frontend was never built:
    monkeypatch.setattr(app_module, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("APP_ENV", "testing")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: frontend build {tmp_path}/frontend/dist/index.html is missing: " + (
        "run `make frontend`\n"
    )


def test_the_example_app_mounts_the_frontend_at_app(app: Quart) -> None:
    assert app.config["SHIPSHAPE_SPA_MOUNT"] == "/app"
    assert "spa" in app.extensions["shipshape"].asgi_layers
