"""The asset build: bundle, minify, hash, precompress, and write the manifest.

Each :class:`Bundle` becomes ``<stem>-<sha256[:16]>.min.<ext>``. Its sources
are concatenated in a stable order (globs sorted) and minified with
rcssmin/rjsmin; vendor files that ship minified are copied as they are, minus
their source-map comments. Files a stylesheet references with ``url(...)``
(icon fonts, images) are copied under hashed names too, and the stylesheet is
rewritten to point at them.

Every compressible output gets ``.br`` (quality 11), ``.gz`` (level 9) and
``.zst`` (level 19) siblings, each kept only when smaller than the original.
``manifest.json`` maps each logical name to its file, byte size, SRI
``sha384`` digest (https://www.w3.org/TR/SRI/), sibling sizes and a digest of
its inputs.

The build is deterministic (same inputs, byte-identical outputs) and
incremental: a bundle whose inputs' digest matches the manifest and whose
files exist is not rebuilt. Outputs of an earlier build that are no longer
needed are removed; files the build did not write are never touched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import rcssmin
import rjsmin

from shipshape.compression import BUILD_LEVELS, SUFFIXES, compress
from shipshape.exceptions import ShipshapeError

MANIFEST_NAME = "manifest.json"
HASH_CHARS = 16  # 64 bits of SHA-256: collisions are out of reach for a site's assets
COMPRESSIBLE = frozenset(
    {".css", ".js", ".mjs", ".svg", ".json", ".webmanifest", ".txt", ".html", ".xml", ".map"}
)
_SOURCE_MAP_RE = re.compile(rb"\n?/[*/]# sourceMappingURL=[^\n]*(\*/)?\s*$")
_CSS_URL_RE = re.compile(rb"""url\(\s*(['"]?)([^'")]+?)\1\s*\)""")
_EXTERNAL = (b"data:", b"http:", b"https:", b"//", b"/", b"#")

Echo = Callable[[str], None]


class AssetError(ShipshapeError, RuntimeError):
    """The manifest is missing, unreadable, or lacks a name the app uses."""


@dataclass(frozen=True)
class Bundle:
    """One output file built from ``sources`` (paths or glob patterns, in order).

    ``minify=False`` copies sources that are already minified, such as
    Bootstrap's ``dist`` files. ``cdn`` is the URL of the same file on a CDN,
    with ``{version}`` filled from the nearest ``package.json``; it is used
    only when the app turns ``SHIPSHAPE_ASSET_CDN`` on.
    """

    name: str
    sources: tuple[str, ...]
    minify: bool = True
    cdn: str | None = None
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        kind = self.name.rsplit(".", 1)[-1]
        if kind not in ("css", "js"):
            raise ValueError(f"bundle {self.name!r}: the name must end in .css or .js")
        if self.cdn is not None and len(self.sources) != 1:
            raise ValueError(f"bundle {self.name!r}: a CDN bundle has exactly one source")
        object.__setattr__(self, "kind", kind)


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size: int
    integrity: str
    encodings: dict[str, int] = field(default_factory=dict)  # coding -> sibling bytes
    source: str = ""  # digest of the inputs, for incremental builds
    cdn: str | None = None
    cdn_integrity: str | None = None

    def files(self) -> list[str]:
        return [self.path] + [self.path + SUFFIXES[coding] for coding in self.encodings]


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


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


def css_references(source: Path, data: bytes) -> dict[bytes, Path]:
    """Relative ``url(...)`` targets of a stylesheet, as written -> file."""
    found: dict[bytes, Path] = {}
    for match in _CSS_URL_RE.finditer(data):
        ref = match[2].strip()
        if ref.startswith(_EXTERNAL):
            continue
        relative = urlsplit(ref.decode()).path
        target = (source.parent / relative).resolve()
        if not target.is_file():
            raise AssetError(f"{source}: url({ref.decode()}) names a missing file")
        found[ref] = target
    return found


def hashed_name(path: Path, data: bytes) -> str:
    return f"{path.stem}-{content_hash(data)}{path.suffix}"


def _package_version(source: Path) -> str:
    for folder in source.parents:
        package = folder / "package.json"
        if package.is_file():
            return str(json.loads(package.read_text("utf-8")).get("version", ""))
    raise AssetError(f"{source}: no package.json above it to take a CDN version from")


class Builder:
    """Builds bundles into ``out_dir``; see the module docstring."""

    def __init__(self, *, root: Path, out_dir: Path, echo: Echo | None = None) -> None:
        self.root = root
        self.out_dir = out_dir
        self.echo = echo or (lambda line: None)
        try:
            self.previous = read_manifest(out_dir)
        except AssetError:  # none yet, or unreadable: build everything
            self.previous = {}
        self.manifest: dict[str, ManifestEntry] = {}

    def build(self, bundles: Sequence[Bundle]) -> dict[str, ManifestEntry]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for bundle in bundles:
            self._bundle(bundle)
        self._write_manifest()
        self._remove_stale()
        self._summary()
        return self.manifest

    def _bundle(self, bundle: Bundle) -> None:
        sources = resolve_sources(bundle, self.root)
        raw = [path.read_bytes() for path in sources]
        references: dict[Path, dict[bytes, Path]] = {}
        if bundle.kind == "css":
            references = {p: css_references(p, data) for p, data in zip(sources, raw, strict=True)}
        digest = hashlib.sha256(repr((bundle.name, bundle.minify, bundle.cdn)).encode())
        for path, data in zip(sources, raw, strict=True):
            digest.update(str(PurePosixPath(path.relative_to(self.root))).encode() + b"\0" + data)
            for target in sorted(references.get(path, {}).values()):
                digest.update(target.read_bytes())
        source_digest = digest.hexdigest()

        dependencies = {
            target
            for refs in references.values()
            for target in refs.values()
        }  # fmt: skip
        rewrites: dict[Path, dict[bytes, bytes]] = {}
        for target in sorted(dependencies):
            hashed = self._dependency(target).encode()
            for source, refs in references.items():
                for ref, path in refs.items():
                    if path == target:
                        rewrites.setdefault(source, {})[ref] = hashed

        previous = self.previous.get(bundle.name)
        if (
            previous is not None
            and previous.source == source_digest
            and all((self.out_dir / f).is_file() for f in previous.files())
        ):
            self.manifest[bundle.name] = previous
            self.echo(f"fresh  {bundle.name:<24} {previous.path}")
            return

        parts = []
        for path, data in zip(sources, raw, strict=True):
            data = _SOURCE_MAP_RE.sub(b"", data.replace(b"\r\n", b"\n"))
            for ref, hashed in rewrites.get(path, {}).items():
                data = data.replace(ref, hashed)
            if bundle.minify:
                text = data.decode("utf-8")
                minified = rcssmin.cssmin(text) if bundle.kind == "css" else rjsmin.jsmin(text)
                data = minified.encode()
            parts.append(data.strip())
        # A newline (CSS) or ";\n" (JS) keeps one file's last statement from
        # merging into the next file's first.
        output = (b"\n" if bundle.kind == "css" else b";\n").join(parts) + b"\n"
        stem = bundle.name.rsplit(".", 1)[0]
        filename = f"{stem}-{content_hash(output)}.min.{bundle.kind}"
        cdn = cdn_integrity = None
        if bundle.cdn is not None:
            cdn = bundle.cdn.format(version=_package_version(sources[0]))
            cdn_integrity = sri(raw[0])  # the CDN serves the npm file unchanged
        self.manifest[bundle.name] = self._write(
            filename, output, source=source_digest, cdn=cdn, cdn_integrity=cdn_integrity
        )
        self.echo(f"built  {bundle.name:<24} {filename}")

    def _dependency(self, target: Path) -> str:
        data = target.read_bytes()
        name = hashed_name(target, data)
        if target.name not in self.manifest:
            previous = self.previous.get(target.name)
            if previous is not None and previous.path == name and (self.out_dir / name).is_file():
                self.manifest[target.name] = previous
            else:
                self.manifest[target.name] = self._write(name, data, source=content_hash(data))
                self.echo(f"copied {target.name:<24} {name}")
        return name

    def _write(self, filename: str, data: bytes, **extra: str | None) -> ManifestEntry:
        _write_if_changed(self.out_dir / filename, data)
        encodings = {}
        if Path(filename).suffix in COMPRESSIBLE:
            for coding, suffix in SUFFIXES.items():
                blob = compress(data, coding, BUILD_LEVELS[coding])
                if len(blob) < len(data):
                    _write_if_changed(self.out_dir / (filename + suffix), blob)
                    encodings[coding] = len(blob)
        return ManifestEntry(
            path=filename,
            size=len(data),
            integrity=sri(data),
            encodings=dict(sorted(encodings.items())),
            source=extra.get("source") or "",
            cdn=extra.get("cdn"),
            cdn_integrity=extra.get("cdn_integrity"),
        )

    def _write_manifest(self) -> None:
        body = json.dumps(
            {name: asdict(entry) for name, entry in sorted(self.manifest.items())}, indent=2
        )
        _write_if_changed(self.out_dir / MANIFEST_NAME, body.encode() + b"\n")

    def _remove_stale(self) -> None:
        # Only files an earlier build wrote (listed in its manifest) are ever
        # removed: the folder may hold files the build knows nothing about.
        keep = {f for entry in self.manifest.values() for f in entry.files()}
        old = {f for entry in self.previous.values() for f in entry.files()}
        for name in sorted(old - keep):
            path = self.out_dir / name
            if path.is_file():
                path.unlink()
                self.echo(f"removed {name}")

    def _summary(self) -> None:
        self.echo(f"{'file':<40} {'raw':>9} {'br':>9} {'gz':>9} {'zst':>9}")
        for entry in sorted(self.manifest.values(), key=lambda e: e.path):
            sizes = [entry.encodings.get(c) for c in ("br", "gzip", "zstd")]
            cells = " ".join(f"{s:>9}" if s is not None else f"{'-':>9}" for s in sizes)
            self.echo(f"{entry.path:<40} {entry.size:>9} {cells}")


def precompress(
    folder: Path, *, echo: Echo | None = None, skip: Collection[str] = ()
) -> dict[str, dict[str, int]]:
    """Give every compressible file below ``folder`` its ``.br``, ``.gz`` and ``.zst``
    siblings at the build levels, each kept only when smaller, as :class:`Builder` does.

    For a build made by another tool (the single-page frontend's ``vite
    build``): ``python -m shipshape.spa precompress frontend/dist``. Returns
    each file's sibling sizes, keyed by its path relative to ``folder``. The
    files in ``skip`` (paths relative to ``folder``) get no siblings, and lose
    any they had: the SPA's ``index.html`` is rendered per request, never sent
    from disk.
    """
    echo = echo or (lambda line: None)
    done: dict[str, dict[str, int]] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.suffix not in COMPRESSIBLE:
            continue
        key = path.relative_to(folder).as_posix()
        if key in skip:
            for suffix in SUFFIXES.values():
                Path(str(path) + suffix).unlink(missing_ok=True)
            continue
        data = path.read_bytes()
        sizes = {}
        for coding, suffix in SUFFIXES.items():
            sibling = Path(str(path) + suffix)
            blob = compress(data, coding, BUILD_LEVELS[coding])
            if len(blob) < len(data):
                _write_if_changed(sibling, blob)
                sizes[coding] = len(blob)
            elif sibling.is_file():  # an older, larger sibling must not be served
                sibling.unlink()
        done[key] = sizes
        cells = " ".join(f"{sizes.get(c, '-'):>9}" for c in ("br", "gzip", "zstd"))
        echo(f"{key:<40} {len(data):>9} {cells}")
    return done


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)


#: The example app's build command; an app of its own names its own (:func:`build_command`).
BUILD_COMMAND = "make assets"


def build_command(import_name: str) -> str:
    """The command that builds the assets of the app imported as ``import_name``."""
    return f"quart --app {import_name.split('.')[0]} assets build"


def build(
    bundles: Sequence[Bundle], *, root: Path, out_dir: Path, echo: Echo | None = None
) -> dict[str, ManifestEntry]:
    """Build ``bundles`` (sources relative to ``root``) into ``out_dir``."""
    return Builder(root=root, out_dir=out_dir, echo=echo).build(bundles)


class ManifestMissingError(AssetError):
    """No manifest was built in the output folder."""


def read_manifest(out_dir: Path, *, build: str = BUILD_COMMAND) -> dict[str, ManifestEntry]:
    """The manifest in ``out_dir``; ``build`` is the command the error names."""
    path = out_dir / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text("utf-8"))
        return {name: ManifestEntry(**entry) for name, entry in raw.items()}
    except FileNotFoundError:
        raise ManifestMissingError(
            f"asset manifest {path} is missing: run `{build}` first"
        ) from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise AssetError(f"asset manifest {path} is unreadable: {exc}") from exc
