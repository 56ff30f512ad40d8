from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from shipshape.bundling import AssetError, Bundle, build, read_manifest
from shipshape.compression import SUFFIXES, decompress
from tests.shipshape.conftest import BUNDLES


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
        digest = base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert entry.integrity == f"sha384-{digest}"
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["site.css"]["path"] == manifest["site.css"].path
    assert read_manifest(out) == manifest


def test_siblings_decompress_to_the_original_and_are_smaller(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "big.css").write_text("".join(f".c{i}{{color:#{i:06x}}}\n" for i in range(3000)))
    (root / "tiny.js").write_text("x")
    out = tmp_path / "dist"
    manifest = build(
        [Bundle("big.css", ("big.css",)), Bundle("tiny.js", ("tiny.js",))], root=root, out_dir=out
    )
    big = manifest["big.css"]
    assert set(big.encodings) == {"br", "gzip", "zstd"}
    original = (out / big.path).read_bytes()
    for coding, size in big.encodings.items():
        blob = (out / (big.path + SUFFIXES[coding])).read_bytes()
        assert len(blob) == size < len(original)
        assert decompress(blob, coding) == original
    assert manifest["tiny.js"].encodings == {}, "a variant that is not smaller is skipped"
    assert not list(out.glob(manifest["tiny.js"].path + ".*"))


def test_css_references_are_copied_hashed_and_rewritten(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "font" / "fonts").mkdir(parents=True)
    (root / "font" / "fonts" / "icons.woff2").write_bytes(b"wOF2" + bytes(range(256)))
    (root / "font" / "icons.css").write_text(
        '@font-face{src:url("fonts/icons.woff2?abc123") format("woff2"),'
        "url(data:font/woff;base64,AAAA)}\n.x{background:url('https://cdn.example/x.png')}"
    )
    out = tmp_path / "dist"
    manifest = build(
        [Bundle("icons.css", ("font/icons.css",), minify=False)], root=root, out_dir=out
    )
    font = manifest["icons.woff2"]
    assert re.fullmatch(r"icons-[0-9a-f]{16}\.woff2", font.path)
    assert font.encodings == {}, "fonts are already compressed"
    css = (out / manifest["icons.css"].path).read_text()
    assert f'url("{font.path}")' in css
    assert "url(data:font/woff;base64,AAAA)" in css and "https://cdn.example/x.png" in css
    (root / "font" / "icons.css").write_text('.y{src:url("fonts/missing.woff2")}')
    with pytest.raises(AssetError, match=r"url\(fonts/missing.woff2\) names a missing file"):
        build([Bundle("icons.css", ("font/icons.css",))], root=root, out_dir=out)


def test_build_is_deterministic(sources: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    build(BUNDLES, root=sources, out_dir=one)
    build(BUNDLES, root=sources, out_dir=two)
    files = sorted(p.name for p in one.iterdir())
    assert files == sorted(p.name for p in two.iterdir())
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def test_build_is_incremental_and_removes_stale(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    first = build(BUNDLES, root=sources, out_dir=out)
    snapshot = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    lines: list[str] = []
    assert build(BUNDLES, root=sources, out_dir=out, echo=lines.append) == first
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == snapshot
    assert [line.split()[0] for line in lines[:3]] == ["fresh", "fresh", "fresh"]
    assert lines[3].split() == ["file", "raw", "br", "gz", "zst"]

    (sources / "css" / "a.css").write_text(".a { margin: 1px }")
    lines.clear()
    second = build(BUNDLES, root=sources, out_dir=out, echo=lines.append)
    assert lines[0].startswith("built  site.css")
    assert second["site.css"].path != first["site.css"].path
    assert second["app.js"] == first["app.js"]
    assert not (out / first["site.css"].path).exists(), "stale output removed"
    assert f"removed {first['site.css'].path}" in lines
    expected = {f for entry in second.values() for f in entry.files()} | {"manifest.json"}
    assert {p.name for p in out.iterdir()} == expected


def test_a_deleted_output_is_rebuilt(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    first = build(BUNDLES, root=sources, out_dir=out)
    (out / first["app.js"].path).unlink()
    (out / "manifest.json").write_text("{broken")
    assert build(BUNDLES, root=sources, out_dir=out) == first
    assert (out / first["app.js"].path).is_file()


def test_cdn_bundle_records_the_cdn_url_and_the_raw_file_integrity(tmp_path: Path) -> None:
    package = tmp_path / "node_modules" / "lib"
    (package / "dist").mkdir(parents=True)
    (package / "package.json").write_text('{"name": "lib", "version": "1.2.3"}')
    raw = b"body{margin:0}\n/*# sourceMappingURL=lib.min.css.map */"
    (package / "dist" / "lib.min.css").write_bytes(raw)
    bundle = Bundle(
        "lib.css",
        ("node_modules/lib/dist/lib.min.css",),
        minify=False,
        cdn="https://cdn.example/lib@{version}/lib.min.css",
    )
    entry = build([bundle], root=tmp_path, out_dir=tmp_path / "dist")["lib.css"]
    assert entry.cdn == "https://cdn.example/lib@1.2.3/lib.min.css"
    assert (
        entry.cdn_integrity == "sha384-" + base64.b64encode(hashlib.sha384(raw).digest()).decode()
    )
    assert entry.integrity != entry.cdn_integrity, "the local copy drops the source map comment"


def test_cdn_bundle_needs_one_source_and_a_package(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one source"):
        Bundle("x.css", ("a.css", "b.css"), cdn="https://cdn.example/x.css")
    (tmp_path / "x.css").write_text("a{}")
    with pytest.raises(AssetError, match="no package.json"):
        build(
            [Bundle("x.css", ("x.css",), cdn="https://cdn.example/{version}/x.css")],
            root=tmp_path,
            out_dir=tmp_path / "dist",
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
        read_manifest(tmp_path)


def test_files_the_build_did_not_write_are_never_removed(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    out.mkdir()
    (out / "robots.txt").write_text("User-agent: *\n")
    first = build(BUNDLES, root=sources, out_dir=out)
    build([], root=sources, out_dir=out)
    assert (out / "robots.txt").is_file()
    assert not any((out / f).exists() for entry in first.values() for f in entry.files())
