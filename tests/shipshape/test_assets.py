from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from quart import Quart, render_template_string
from quart.testing.app import LifespanError

from shipshape.assets import AssetError, Bundle, build, load_manifest
from tests.shipshape.conftest import MakeApp


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "css").mkdir(parents=True)
    (root / "js").mkdir()
    (root / "vendor").mkdir()
    (root / "css" / "b.css").write_text("/* b */\n.b {  color : red ; }\n")
    (root / "css" / "a.css").write_text(".a {\r\n  margin: 0 ;\r\n}\n")
    (root / "js" / "app.js").write_text("// note\nvar  x = 1 ;\nfunction f ( y ) { return y }\n")
    (root / "vendor" / "lib.min.js").write_text("var lib=1;\n//# sourceMappingURL=lib.min.js.map\n")
    return root


BUNDLES = (
    Bundle("site.css", ("css/*.css",)),
    Bundle("app.js", ("js/app.js",)),
    Bundle("lib.js", ("vendor/lib.min.js",), minify=False),
)


def test_build_writes_hashed_minified_files_and_manifest(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    manifest = build(BUNDLES, root=sources, out_dir=out)
    assert set(manifest) == {"site.css", "app.js", "lib.js"}
    css = (out / manifest["site.css"].path).read_bytes()
    assert css == b".a{margin:0}\n.b{color:red}\n", "sorted glob order, minified"
    assert (out / manifest["lib.js"].path).read_bytes() == b"var lib=1;\n", "source map dropped"
    assert b"note" not in (out / manifest["app.js"].path).read_bytes()
    for entry in manifest.values():
        data = (out / entry.path).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        assert re.fullmatch(r"[a-z]+-[0-9a-f]{16}\.min\.(css|js)", entry.path)
        assert sha[:16] in entry.path
        assert entry.size == len(data)
        assert (
            entry.integrity == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
        )
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["site.css"] == vars(manifest["site.css"])
    assert load_manifest(out) == manifest


def test_build_is_deterministic_incremental_and_removes_stale(
    sources: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dist"
    first = build(BUNDLES, root=sources, out_dir=out)
    snapshot = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    lines: list[str] = []
    assert build(BUNDLES, root=sources, out_dir=out, echo=lines.append) == first
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == snapshot
    assert all(line.startswith("fresh") for line in lines)

    (sources / "css" / "a.css").write_text(".a { margin: 1px }")
    second = build(BUNDLES, root=sources, out_dir=out)
    assert second["site.css"].path != first["site.css"].path
    assert second["app.js"] == first["app.js"]
    assert not (out / first["site.css"].path).exists(), "stale output removed"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [e.path for e in second.values()] + ["manifest.json"]
    )


def test_missing_source_is_an_error(sources: Path, tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="no file matches 'css/none.css'"):
        build([Bundle("x.css", ("css/none.css",))], root=sources, out_dir=tmp_path / "d")
    with pytest.raises(AssetError, match="no file matches"):
        build([Bundle("x.css", ("nothing/*.css",))], root=sources, out_dir=tmp_path / "d")


def test_bundle_names_must_say_css_or_js() -> None:
    with pytest.raises(ValueError, match=r"must end in \.css or \.js"):
        Bundle("logo.png", ("logo.png",))


@pytest.mark.parametrize("content", [None, "{not json", '{"a": {"wrong": 1}}', "[1]"])
def test_unreadable_manifest(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(AssetError, match="missing" if content is None else "unreadable"):
        load_manifest(tmp_path)


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
            "checks": {"assets": {"ok": True, "duration_ms": pytest.approx(0, abs=50)}},
        }
        response = await app.test_client().get("/")
        html = await response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    assert nonce is not None
    manifest = load_manifest(out)
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


async def test_missing_manifest_stops_startup_and_readiness_fails(
    make_app: MakeApp, sources: Path, tmp_path: Path
) -> None:
    app = assets_app(make_app, sources, tmp_path / "never-built", "")
    with pytest.raises(LifespanError, match="missing: run `make assets`"):
        async with app.test_app():
            pass
    async with app.test_request_context("/"):
        with pytest.raises(AssetError, match="not loaded"):
            await app.extensions["shipshape"].assets.ready()
        with pytest.raises(AssetError, match="unknown asset 'site.css'"):
            app.extensions["shipshape"].assets.url("site.css")
