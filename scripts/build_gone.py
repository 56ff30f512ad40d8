"""Which builds have files gone while their stamps are still there: the Makefile's cue.

    python3 scripts/build_gone.py      # prints "assets", "frontend", both or nothing

A build is gone when a file it made is missing: a file the asset manifest
lists (or one of its ``.br``/``.gz``/``.zst`` siblings), or a file of the
frontend's build as ``make frontend`` listed them in ``frontend/dist/.files``
(chunks and siblings included; a build with no list yet counts as gone, once),
or one of those whose bytes are no longer the ones listed with it.
make compares times only, so with such a file deleted by hand ``make assets``
and ``make frontend`` said there was nothing to do, while start-up refused the
build and told the user to run them. A build with no stamp yet is not named
(make builds it anyway). Plain Python with no imports of the project's: make
runs it on every invocation, before any venv exists.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSET_DIR = ROOT / "src" / "app" / "static" / "dist"
FRONTEND_DIR = ROOT / "frontend" / "dist"
SUFFIXES = {"br": ".br", "gzip": ".gz", "zstd": ".zst"}


def asset_files() -> list[Path]:
    if not (ASSET_DIR / "manifest.json").is_file():
        raise FileNotFoundError("no build yet")
    manifest = json.loads((ASSET_DIR / "manifest.json").read_text("utf-8"))
    return [
        ASSET_DIR / (entry["path"] + suffix)
        for entry in manifest.values()
        for suffix in ["", *(SUFFIXES.get(coding, "") for coding in entry.get("encodings", {}))]
    ]


def frontend_files() -> dict[Path, str | None]:
    """The build's files, each with the SHA-256 ``make frontend`` listed (``None`` in a
    list of paths alone, as it was written before the hashes)."""
    if not (FRONTEND_DIR / "index.html").is_file():
        raise FileNotFoundError("no build yet")
    files: dict[Path, str | None] = {}
    for line in (FRONTEND_DIR / ".files").read_text("utf-8").splitlines():  # none yet: gone
        digest, _, path = line.rpartition("  ")  # sha256sum's "<hex>  ./path"
        files[FRONTEND_DIR / path] = digest or None
    return files


def changed(path: Path, digest: str | None) -> bool:
    """Whether ``path`` is missing, or no longer the file that was built there (an index
    overwritten or cut short by hand: start-up refused it, and make saw nothing to do)."""
    if not path.is_file():
        return True
    return digest is not None and hashlib.sha256(path.read_bytes()).hexdigest() != digest


def gone(kind: str) -> bool:
    try:
        if kind == "assets":
            return not all(path.is_file() for path in asset_files())
        return any(changed(path, digest) for path, digest in frontend_files().items())
    except FileNotFoundError as exc:
        return exc.filename is not None  # the list is missing, not the build
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False  # a stamp make will rebuild by its time anyway


if __name__ == "__main__":
    print(" ".join(kind for kind in ("assets", "frontend") if gone(kind)))
