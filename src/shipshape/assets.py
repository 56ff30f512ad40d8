"""Assets at run time: the manifest, the ``asset()`` helper and ``assets build``.

The build itself lives in :mod:`shipshape.bundling`. At start-up the manifest
is loaded once and every template's ``asset('…')`` call is checked against it,
so an unknown asset stops start-up instead of becoming a 500 at render time.
In a template::

    {{ asset("bootstrap.css") }}

renders ``<link rel="stylesheet" href="/static/bootstrap-….min.css"
integrity="sha384-…" crossorigin="anonymous">``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click
from jinja2 import nodes
from markupsafe import Markup
from quart import Quart, current_app

from shipshape.bundling import (
    AssetError,
    Bundle,
    Echo,
    ManifestEntry,
    ManifestMissingError,
    build,
    build_command,
    read_manifest,
)
from shipshape.csp import csp_nonce
from shipshape.options import (
    ON_IN_DEVELOPMENT,
    Derived,
    Option,
    apply,
    flag,
    is_folder,
    is_prefix,
    sequence_of,
)

_NONCE_SLOT = "\x00nonce\x00"  # cannot occur in a URL, a digest or an attribute

OPTIONS: tuple[Option, ...] = (
    Option(
        "SHIPSHAPE_ASSET_BUNDLES",
        (),
        "a sequence of `shipshape.bundling.Bundle`",
        "the CSS and JS bundles to build",
        sequence_of(Bundle, "Bundle"),
    ),
    Option(
        "SHIPSHAPE_ASSET_ROOT",
        Derived(lambda app: app.root_path, "the app's root path"),
        "a folder",
        "where bundle sources are found",
        is_folder,
    ),
    Option(
        "SHIPSHAPE_ASSET_DIR",
        Derived(lambda app: app.static_folder, "the app's static folder"),
        "a folder",
        "the build output, served at `SHIPSHAPE_STATIC_URL`",
        is_folder,
    ),
    Option(
        "SHIPSHAPE_STATIC_URL",
        "/static/",
        "a path ending in `/`",
        "URL prefix of built files",
        is_prefix,
    ),
    flag(
        "SHIPSHAPE_ASSET_CDN",
        False,
        "vendor bundles from jsDelivr with the npm file's SRI (docs/assets.md)",
    ),
    flag("SHIPSHAPE_ASSET_AUTOBUILD", ON_IN_DEVELOPMENT, "rebuild changed bundles at start-up"),
)


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
    ``SHIPSHAPE_ASSET_DIR`` (the build output, served at ``SHIPSHAPE_STATIC_URL``),
    ``SHIPSHAPE_ASSET_CDN`` (off: serve bundles that have a ``cdn`` URL from
    that CDN, with SRI, as the Flask template did; the CSP then allows the
    CDN's origin for scripts and styles, and nothing else changes).
    """

    def __init__(self, app: Quart | None = None) -> None:
        self.manifest: dict[str, ManifestEntry] = {}
        self._tags: dict[str, str] = {}
        self.loaded = False
        self.use_cdn = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        apply(app, OPTIONS)
        self.use_cdn = bool(app.config["SHIPSHAPE_ASSET_CDN"])
        if app.config["SHIPSHAPE_ASSET_AUTOBUILD"] and app.config["SHIPSHAPE_ASSET_BUNDLES"]:
            # Development: each (re)start rebuilds what changed, before the
            # static table is scanned. Production serves only what was built.
            self.build(app)
        app.add_template_global(self.tag, "asset")
        app.add_template_global(self.url, "asset_url")
        app.before_serving(self.startup_check)
        app.cli.add_command(self.cli_group(app))

    def cdn_origins(self, app: Quart) -> list[str]:
        """The CDN origins the CSP must allow, when CDN mode is on."""
        if not app.config.get("SHIPSHAPE_ASSET_CDN"):
            return []
        origins = set()
        for bundle in self.bundles(app):
            if bundle.cdn:
                parts = urlsplit(bundle.cdn)
                origins.add(f"{parts.scheme}://{parts.netloc}")
        return sorted(origins)

    def load(self, app: Quart) -> None:
        """Load the manifest and check every bundle and template name against it, and
        that each file it lists is there (a file deleted by hand: a 404 and an unstyled
        site, with the readiness probe saying all was well)."""
        out_dir = Path(app.config["SHIPSHAPE_ASSET_DIR"])
        command = build_command(app.import_name)  # `make assets` runs it in the example
        bundles = self.bundles(app)
        try:
            manifest = read_manifest(out_dir, build=command)
        except ManifestMissingError:
            if bundles:
                raise
            manifest = {}  # nothing to build: a template that names an asset is told below
        for entry in manifest.values():
            for file in entry.files():
                if not (out_dir / file).is_file():
                    raise AssetError(
                        f"asset file {file}, which the manifest lists, is missing: run `{command}`"
                    )
        wanted = {bundle.name: "SHIPSHAPE_ASSET_BUNDLES" for bundle in bundles}
        wanted.update(template_asset_names(app))
        for name, where in sorted(wanted.items()):
            if name not in manifest:
                raise AssetError(
                    f"asset {name!r} used in {where} is not in the manifest: "
                    f"run `{command}`, or fix the name"
                )
        self.manifest = manifest
        self._tags.clear()
        self.loaded = True

    async def ready(self) -> str | None:
        """Readiness: the manifest was loaded and checked at start-up."""
        if not self.loaded:
            raise AssetError("the asset manifest is not loaded")
        return None

    async def startup_check(self) -> None:
        self.load(current_app._get_current_object())  # type: ignore[attr-defined]

    @staticmethod
    def bundles(app: Quart) -> list[Bundle]:
        return list(app.config["SHIPSHAPE_ASSET_BUNDLES"])

    def _entry(self, name: str) -> ManifestEntry:
        try:
            return self.manifest[name]
        except KeyError:
            raise AssetError(f"unknown asset {name!r}") from None

    def url(self, name: str) -> str:
        entry = self._entry(name)
        if self.use_cdn and entry.cdn:
            return entry.cdn
        return str(current_app.config["SHIPSHAPE_STATIC_URL"]) + entry.path

    def tag(self, name: str, **attrs: str) -> Markup:
        """A ``<link>`` or ``<script>`` tag with ``integrity``, ``crossorigin`` and the nonce."""
        if not attrs:  # the common case: a tag built once, plus this response's nonce
            cached = self._tags.get(name)
            if cached is None:
                # Kept as str, not Markup: Markup.replace escapes its arguments and
                # wraps the result, which tripled this call's cost.
                tag = self._render_tag(name, {"nonce": _NONCE_SLOT})
                cached = self._tags[name] = str(tag)
            # A nonce is URL-safe base64, so it needs no escaping.
            return Markup(cached.replace(_NONCE_SLOT, csp_nonce()))  # noqa: S704
        return self._render_tag(name, {"nonce": csp_nonce(), **attrs})

    def _render_tag(self, name: str, attrs: dict[str, str]) -> Markup:
        url = self.url(name)
        entry = self._entry(name)
        integrity = entry.cdn_integrity if self.use_cdn and entry.cdn else entry.integrity
        extra = Markup("").join(Markup(' {}="{}"').format(k, v) for k, v in sorted(attrs.items()))
        if name.endswith(".css"):
            return Markup(
                '<link rel="stylesheet" href="{}" integrity="{}" crossorigin="anonymous"{}>'
            ).format(url, integrity, extra)
        return Markup(
            '<script src="{}" integrity="{}" crossorigin="anonymous" defer{}></script>'
        ).format(url, integrity, extra)

    def build(self, app: Quart, echo: Echo | None = None) -> None:
        """Build the configured bundles into the asset folder (incremental)."""
        build(
            self.bundles(app),
            root=Path(app.config["SHIPSHAPE_ASSET_ROOT"]),
            out_dir=Path(app.config["SHIPSHAPE_ASSET_DIR"]),
            echo=echo,
        )

    def cli_group(self, app: Quart) -> click.Group:
        @click.group("assets", help="Build the CSS and JS bundles.")
        def group() -> None:
            pass

        @group.command("build", help="Bundle, minify, hash and precompress; write the manifest.")
        def build_command() -> None:
            try:
                self.build(app, echo=click.echo)
            except AssetError as exc:
                raise click.ClickException(str(exc)) from exc

        return group
