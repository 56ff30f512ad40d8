"""The single-page frontend's build, read once: the index split for its nonce
and CSRF token, and the table of its other files.

:func:`load_build` reads Vite's ``dist/`` for :mod:`shipshape.spa`:

* ``index.html`` is split where each response's nonce goes (every
  ``<script>``, every ``<style>``, stylesheet and preload ``<link>``, and any
  ``nonce="…"`` placeholder such as Vite's ``html.cspNonce`` meta) and where
  the CSRF token goes (``<meta name="csrf-token">`` before ``</head>``);
* every other file joins a table made by :func:`shipshape.static.scan`, so
  build files are served exactly like the server-rendered assets; everything
  under the assets folder is immutable, since Vite puts a content hash in
  every name there;
* a missing or broken build (no index, an index that names a file the build
  lacks, or a ``base`` that is not the mount) raises :class:`SPAError`, whose
  one line names the command that builds it.

:func:`main` is ``python -m shipshape.spa precompress DIR``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipshape.bundling import precompress
from shipshape.compression.slots import SlottedBody, slotted
from shipshape.exceptions import ShipshapeError
from shipshape.static import IMMUTABLE, StaticFile, scan

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


class SPAError(ShipshapeError, RuntimeError):
    """The frontend build is missing or broken; the message names the command that builds it."""


@dataclass(frozen=True)
class Index:
    """``index.html`` in pieces: text, and the slots for the nonce and the CSRF token."""

    parts: tuple[str, ...]

    def render(self, nonce: str, token: str) -> bytes:
        fill = {_NONCE: nonce, _CSRF_SLOT: token}
        return "".join([fill.get(part, part) for part in self.parts]).encode()

    def compressed(
        self, codings: Sequence[str], *, nonce_size: int, token_size: int
    ) -> dict[str, SlottedIndex]:
        """The index compressed once per coding, for a nonce and a token of these sizes
        (:mod:`shipshape.compression.slots`); a coding whose check fails is left out."""
        pieces = [part if part in (_NONCE, _CSRF_SLOT) else part.encode() for part in self.parts]
        sizes = {
            slot: size
            for slot, size in ((_NONCE, nonce_size), (_CSRF_SLOT, token_size))
            if slot in self.parts
        }
        return {
            coding: SlottedIndex(body) for coding, body in slotted(pieces, sizes, codings).items()
        }


@dataclass(frozen=True)
class SlottedIndex:
    """The index compressed once with one coding; :meth:`render` fills in a response's values."""

    body: SlottedBody

    @property
    def coding(self) -> str:
        return self.body.coding

    @property
    def size(self) -> int:
        return self.body.size

    def render(self, nonce: str, token: str) -> bytes:
        """Raises ``ValueError`` for a nonce or token of another size than the slots'."""
        return self.body.render({_NONCE: nonce.encode(), _CSRF_SLOT: token.encode()})


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


#: A service worker at the build's root, by the names the tools give it. Its own
#: response's CSP governs every request it makes, and the static profile's
#: ``default-src 'none'`` would refuse them all: it gets :data:`WORKER_CSP`.
SERVICE_WORKERS = frozenset({"service-worker.js", "sw.js"})
#: Same-origin requests and scripts only (``fetch``, the Cache API, ``importScripts``).
WORKER_CSP = b"default-src 'none'; connect-src 'self'; script-src 'self'"


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
        elif key in SERVICE_WORKERS:
            entry.csp = WORKER_CSP
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
    check_vite_manifest(root, files, command)
    return Build(prepare_index(html, csrf=csrf), files)


#: Where Vite writes its manifest with ``build.manifest: true``, inside the build.
VITE_MANIFEST = ".vite/manifest.json"


def check_vite_manifest(root: Path, files: Mapping[str, object], command: str) -> None:
    """:class:`SPAError` when a file Vite's manifest lists is not in the build.

    ``index.html`` links the entry chunk only; the chunks its code imports
    later (a route's view), their CSS and the files those load are in the
    manifest. One of them missing was a page that failed when the user got
    there, with start-up saying nothing. A build without a manifest is checked
    by its index alone.
    """
    path = root / VITE_MANIFEST
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise SPAError(f"frontend build {path} is unreadable ({exc}): run `{command}`") from exc
    chunks = manifest.values() if isinstance(manifest, dict) else [None]
    for chunk in chunks:
        if not isinstance(chunk, dict):
            raise SPAError(f"frontend build {path} is not Vite's manifest: run `{command}`")
        listed = [chunk.get("file"), *chunk.get("css", ()), *chunk.get("assets", ())]
        for name in listed:
            if not isinstance(name, str):
                raise SPAError(f"frontend build {path} is not Vite's manifest: run `{command}`")
            if name not in files:
                raise SPAError(
                    f"frontend build {root} lacks {name}, which {VITE_MANIFEST} lists: "
                    f"run `{command}`"
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
