"""Asset bundles: build to content-hashed files with a manifest, render with SRI.

The build concatenates each bundle's sources in a stable order, minifies them
with rcssmin/rjsmin (vendor files that ship minified are copied as they are),
and writes ``<stem>-<sha256[:16]>.min.<ext>`` plus ``manifest.json``, which
maps each logical name to its file, byte size and SRI ``sha384`` digest
(https://www.w3.org/TR/SRI/). Same inputs give byte-identical outputs; files
no longer in the manifest are removed.

At start-up the manifest is loaded once and every template's ``asset('…')``
call is checked against it, so an unknown asset stops start-up instead of
becoming a 500 at render time. In a template::

    {{ asset("bootstrap.css") }}

renders ``<link rel="stylesheet" href="/static/bootstrap-….min.css"
integrity="sha384-…" crossorigin="anonymous">``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import rcssmin
import rjsmin
from jinja2 import nodes
from markupsafe import Markup
from quart import Quart, current_app

from shipshape.csp import csp_nonce
from shipshape.exceptions import ShipshapeError

MANIFEST_NAME = "manifest.json"
HASH_CHARS = 16  # 64 bits of SHA-256: collisions are out of reach for a site's assets
_SOURCE_MAP_RE = re.compile(rb"\n?/[*/]# sourceMappingURL=[^\n]*(\*/)?\s*$")


class AssetError(ShipshapeError, RuntimeError):
    """The manifest is missing, unreadable, or lacks a name the app uses."""


@dataclass(frozen=True)
class Bundle:
    """One output file built from ``sources`` (paths or glob patterns, in order).

    ``minify=False`` copies sources that are already minified, such as
    Bootstrap's ``dist`` files, minus their source-map comments.
    """

    name: str
    sources: tuple[str, ...]
    minify: bool = True
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        kind = self.name.rsplit(".", 1)[-1]
        if kind not in ("css", "js"):
            raise ValueError(f"bundle {self.name!r}: the name must end in .css or .js")
        object.__setattr__(self, "kind", kind)


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size: int
    integrity: str


def resolve_sources(bundle: Bundle, root: Path) -> list[Path]:
    files: list[Path] = []
    for pattern in bundle.sources:
        matches = sorted(root.glob(pattern)) if any(c in pattern for c in "*?[") else []
        if not matches:
            path = root / pattern
            if not path.is_file():
                raise AssetError(f"bundle {bundle.name!r}: no file matches {pattern!r}")
            matches = [path]
        files.extend(matches)
    return files


def _bundle_bytes(bundle: Bundle, sources: Iterable[Path]) -> bytes:
    parts = []
    for path in sources:
        data = _SOURCE_MAP_RE.sub(b"", path.read_bytes().replace(b"\r\n", b"\n"))
        if bundle.minify:
            text = data.decode("utf-8")
            data = (rcssmin.cssmin(text) if bundle.kind == "css" else rjsmin.jsmin(text)).encode()
        parts.append(data.strip())
    # A newline (CSS) or ";\n" (JS) keeps one file's last statement from merging
    # into the next file's first.
    joiner = b"\n" if bundle.kind == "css" else b";\n"
    return joiner.join(parts) + b"\n"


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def build(
    bundles: Sequence[Bundle], *, root: Path, out_dir: Path, echo: Any = None
) -> dict[str, ManifestEntry]:
    """Build ``bundles`` (sources relative to ``root``) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, ManifestEntry] = {}
    for bundle in bundles:
        data = _bundle_bytes(bundle, resolve_sources(bundle, root))
        stem = bundle.name.rsplit(".", 1)[0]
        filename = f"{stem}-{hashlib.sha256(data).hexdigest()[:HASH_CHARS]}.min.{bundle.kind}"
        target = out_dir / filename
        written = not target.is_file() or target.read_bytes() != data
        if written:
            target.write_bytes(data)
        manifest[bundle.name] = ManifestEntry(filename, len(data), sri(data))
        if echo is not None:
            echo(f"{'built' if written else 'fresh'}  {bundle.name:<16} {filename} {len(data)} B")
    manifest_bytes = json.dumps(
        {name: vars(entry) for name, entry in sorted(manifest.items())}, indent=2
    ).encode()
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.is_file() or manifest_path.read_bytes() != manifest_bytes + b"\n":
        manifest_path.write_bytes(manifest_bytes + b"\n")
    keep = {entry.path for entry in manifest.values()} | {MANIFEST_NAME}
    for stale in out_dir.iterdir():
        if stale.is_file() and stale.name not in keep:
            stale.unlink()
    return manifest


def load_manifest(out_dir: Path) -> dict[str, ManifestEntry]:
    path = out_dir / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text("utf-8"))
        return {name: ManifestEntry(**entry) for name, entry in raw.items()}
    except FileNotFoundError:
        raise AssetError(
            f"asset manifest {path} is missing: run `make assets` "
            "(quart --app app assets build) first"
        ) from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise AssetError(f"asset manifest {path} is unreadable: {exc}") from exc


def template_asset_names(app: Quart) -> dict[str, str]:
    """Every constant ``asset('name')`` in the app's templates, mapped to a template."""
    env = app.jinja_env
    found: dict[str, str] = {}
    for template in env.list_templates(filter_func=lambda n: n.endswith((".html", ".jinja"))):
        source, _, _ = env.loader.get_source(env, template)  # type: ignore[union-attr]
        for call in env.parse(source).find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name in ("asset", "asset_url"):
                first = call.args[0] if call.args else None
                if isinstance(first, nodes.Const) and isinstance(first.value, str):
                    found.setdefault(first.value, template)
    return found


class Assets:
    """Serves the built manifest to templates and registers ``assets build``.

    Config: ``SHIPSHAPE_ASSET_BUNDLES`` (a sequence of :class:`Bundle`),
    ``SHIPSHAPE_ASSET_ROOT`` (where bundle sources are resolved),
    ``SHIPSHAPE_ASSET_DIR`` (the build output, served at the static URL) and
    ``SHIPSHAPE_STATIC_URL``.
    """

    def __init__(self, app: Quart | None = None) -> None:
        self.manifest: dict[str, ManifestEntry] = {}
        self.loaded = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.config.setdefault("SHIPSHAPE_ASSET_BUNDLES", ())
        app.config.setdefault("SHIPSHAPE_ASSET_ROOT", app.root_path)
        app.config.setdefault("SHIPSHAPE_ASSET_DIR", app.static_folder)
        app.config.setdefault("SHIPSHAPE_STATIC_URL", "/static/")
        app.add_template_global(self.tag, "asset")
        app.add_template_global(self.url, "asset_url")
        app.before_serving(self.startup_check)
        app.cli.add_command(self.cli_group(app))

    def load(self, app: Quart) -> None:
        """Load the manifest and check every bundle and template name against it."""
        manifest = load_manifest(Path(app.config["SHIPSHAPE_ASSET_DIR"]))
        wanted = {bundle.name: "SHIPSHAPE_ASSET_BUNDLES" for bundle in self.bundles(app)}
        wanted.update(template_asset_names(app))
        for name, where in sorted(wanted.items()):
            if name not in manifest:
                raise AssetError(
                    f"asset {name!r} used in {where} is not in the manifest: "
                    "run `make assets`, or fix the name"
                )
        self.manifest = manifest
        self.loaded = True

    async def ready(self) -> None:
        """Readiness: the manifest was loaded and checked at start-up."""
        if not self.loaded:
            raise AssetError("the asset manifest is not loaded")

    async def startup_check(self) -> None:
        self.load(current_app._get_current_object())  # type: ignore[attr-defined]

    @staticmethod
    def bundles(app: Quart) -> list[Bundle]:
        return list(app.config["SHIPSHAPE_ASSET_BUNDLES"])

    def url(self, name: str) -> str:
        try:
            entry = self.manifest[name]
        except KeyError:
            raise AssetError(f"unknown asset {name!r}") from None
        return str(current_app.config["SHIPSHAPE_STATIC_URL"]) + entry.path

    def tag(self, name: str, **attrs: str) -> Markup:
        """A ``<link>`` or ``<script>`` tag with ``integrity``, ``crossorigin`` and the nonce."""
        url = self.url(name)
        attrs = {"nonce": csp_nonce(), **attrs}
        extra = Markup("").join(Markup(' {}="{}"').format(k, v) for k, v in sorted(attrs.items()))
        integrity = self.manifest[name].integrity
        if name.endswith(".css"):
            return Markup(
                '<link rel="stylesheet" href="{}" integrity="{}" crossorigin="anonymous"{}>'
            ).format(url, integrity, extra)
        return Markup(
            '<script src="{}" integrity="{}" crossorigin="anonymous" defer{}></script>'
        ).format(url, integrity, extra)

    def cli_group(self, app: Quart) -> click.Group:
        @click.group("assets", help="Build the CSS and JS bundles.")
        def group() -> None:
            pass

        @group.command("build", help="Bundle, minify and hash the assets; write the manifest.")
        def build_command() -> None:
            try:
                build(
                    self.bundles(app),
                    root=Path(app.config["SHIPSHAPE_ASSET_ROOT"]),
                    out_dir=Path(app.config["SHIPSHAPE_ASSET_DIR"]),
                    echo=click.echo,
                )
            except AssetError as exc:
                raise click.ClickException(str(exc)) from exc

        return group
