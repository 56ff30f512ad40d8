from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from quart import Quart, render_template_string
from quart.testing.app import LifespanError

from shipshape.bundling import AssetError, Bundle, build, read_manifest
from shipshape.check import run_checks
from tests.shipshape.conftest import BUNDLES, MakeApp


def assets_app(make_app: MakeApp, sources: Path, out: Path, template: str) -> Quart:
    app = make_app(
        SHIPSHAPE_ASSET_BUNDLES=BUNDLES,
        SHIPSHAPE_ASSET_ROOT=str(sources),
        SHIPSHAPE_ASSET_DIR=str(out),
    )
    templates = out.parent / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "page.html").write_text(template)
    app.template_folder = str(templates)

    @app.get("/")
    async def page() -> str:
        return await render_template_string(template)

    return app


async def test_cli_build_then_tags_with_sri(
    make_app: MakeApp, sources: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dist"
    app = assets_app(
        make_app, sources, out, '{{ asset("site.css") }}{{ asset("app.js", type="module") }}'
    )
    result = CliRunner().invoke(app.cli, ["assets", "build"])
    assert result.exit_code == 0, result.output
    assert "built  site.css" in result.output
    async with app.test_app():
        assert await (await app.test_client().get("/readyz")).get_json() == {
            "status": "ok",
            "checks": {
                "assets": {"ok": True, "duration_ms": pytest.approx(0, abs=50)},
                "ratelimit_store": {"ok": True, "duration_ms": pytest.approx(0, abs=50)},
            },
        }
        response = await app.test_client().get("/")
        html = await response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    assert nonce is not None
    manifest = read_manifest(out)
    assert html == (
        f'<link rel="stylesheet" href="/static/{manifest["site.css"].path}" '
        f'integrity="{manifest["site.css"].integrity}" crossorigin="anonymous" '
        f'nonce="{nonce[1]}">'
        f'<script src="/static/{manifest["app.js"].path}" '
        f'integrity="{manifest["app.js"].integrity}" crossorigin="anonymous" defer '
        f'nonce="{nonce[1]}" type="module"></script>'
    )


def test_cli_build_reports_errors(make_app: MakeApp, sources: Path, tmp_path: Path) -> None:
    app = make_app(
        SHIPSHAPE_ASSET_BUNDLES=(Bundle("x.css", ("missing.css",)),),
        SHIPSHAPE_ASSET_ROOT=str(sources),
        SHIPSHAPE_ASSET_DIR=str(tmp_path / "dist"),
    )
    result = CliRunner().invoke(app.cli, ["assets", "build"])
    assert result.exit_code == 1
    assert "Error: bundle 'x.css': no file matches 'missing.css'" in result.output


async def test_unknown_asset_in_a_template_stops_startup(
    make_app: MakeApp, sources: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dist"
    build(BUNDLES, root=sources, out_dir=out)
    app = assets_app(make_app, sources, out, '{{ asset("typo.css") }}')
    with pytest.raises(LifespanError, match=r"asset 'typo.css' used in page.html is not in the"):
        async with app.test_app():
            pass


async def test_a_listed_file_that_is_gone_stops_startup(
    make_app: MakeApp, sources: Path, tmp_path: Path
) -> None:
    """Regression (newcomer run): a built file deleted by hand was a 404 and an unstyled
    site, while the readiness probe and check --deploy said all was well."""
    out = tmp_path / "dist"
    build(BUNDLES, root=sources, out_dir=out)
    gone = read_manifest(out)["site.css"].path
    (out / gone).unlink()
    app = assets_app(make_app, sources, out, '{{ asset("site.css") }}')
    with pytest.raises(LifespanError, match=rf"asset file {re.escape(gone)}, which the manifest"):
        async with app.test_app():
            pass


@pytest.mark.parametrize("deploy", [True, False])
def test_check_reports_a_manifest_that_would_stop_serving(
    make_app: MakeApp, sources: Path, tmp_path: Path, deploy: bool
) -> None:
    """Regression (README audit): `check --deploy` passed with a file or a name missing
    from the asset manifest, and `make serve` then refused to start."""
    out = tmp_path / "dist"
    build(BUNDLES, root=sources, out_dir=out)
    app = assets_app(make_app, sources, out, '{{ asset("site.css") }}{{ asset("gone.js") }}')
    settings = app.extensions["shipshape"].settings
    found = run_checks(app, settings, deploy=deploy, workers=1)
    [finding] = [f for f in found if f.id == "shipshape.E000"]
    assert finding.severity == "error"
    assert finding.message.startswith("asset 'gone.js' used in page.html is not in the manifest")
    whole = assets_app(make_app, sources, out, '{{ asset("site.css") }}')
    found = run_checks(whole, whole.extensions["shipshape"].settings, deploy=deploy, workers=1)
    assert "shipshape.E000" not in {f.id for f in found}


async def test_an_app_with_no_bundles_starts_without_a_manifest(
    make_app: MakeApp, tmp_path: Path
) -> None:
    """Regression (library user's probe): an app with no bundles needed a manifest built
    for nothing, and the error named the example app's `make assets`."""
    app = make_app(SHIPSHAPE_ASSET_DIR=str(tmp_path / "never-built"))

    @app.get("/")
    async def page() -> str:
        return "no assets here"

    async with app.test_app():
        response = await app.test_client().get("/")
        assert await response.get_data(as_text=True) == "no assets here"
        assert await app.extensions["shipshape"].assets.ready() is None

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text('{{ asset("site.css") }}')
    named = make_app(SHIPSHAPE_ASSET_DIR=str(tmp_path / "never-built"))
    named.template_folder = str(templates)
    with pytest.raises(LifespanError, match=r"asset 'site.css' used in page.html is not in the "
                       r"manifest: run `quart --app tests assets build`"):  # fmt: skip
        async with named.test_app():
            pass


async def test_missing_manifest_stops_startup_and_readiness_fails(
    make_app: MakeApp, sources: Path, tmp_path: Path
) -> None:
    app = assets_app(make_app, sources, tmp_path / "never-built", "")
    with pytest.raises(LifespanError, match="missing: run `quart --app tests assets build`"):
        async with app.test_app():
            pass
    async with app.test_request_context("/"):
        with pytest.raises(AssetError, match="not loaded"):
            await app.extensions["shipshape"].assets.ready()
        with pytest.raises(AssetError, match="unknown asset 'site.css'"):
            app.extensions["shipshape"].assets.url("site.css")


async def test_development_rebuilds_what_changed_at_each_start(
    make_app: MakeApp, sources: Path, tmp_path: Path
) -> None:
    """The README's "development rebuilds on change": each start in development builds
    the bundles whose sources changed; other modes serve only what was built."""
    out = tmp_path / "dist"

    def start(mode: str) -> Quart:
        return make_app(
            APP_ENV=mode,
            SHIPSHAPE_ASSET_BUNDLES=BUNDLES,
            SHIPSHAPE_ASSET_ROOT=str(sources),
            SHIPSHAPE_ASSET_DIR=str(out),
        )

    start("development")
    first = read_manifest(out)["site.css"]
    (sources / "css" / "a.css").write_text(".a { margin: 2px }")
    start("testing")  # no build outside development
    assert read_manifest(out)["site.css"] == first
    start("development")
    second = read_manifest(out)["site.css"]
    assert second.path != first.path
    assert (out / second.path).read_bytes().startswith(b".a{margin:2px}")
    assert not (out / first.path).exists()
