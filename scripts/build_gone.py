"""Whether a build's files are gone while its stamp is still there: the Makefile's cue.

    python3 scripts/build_gone.py assets|frontend

Prints ``gone`` when a file that the build's stamp names is missing: a file
the asset manifest lists (or one of its ``.br``/``.gz``/``.zst`` siblings), or
a file under ``assets/`` that the frontend's ``index.html`` links. make
compares times only, so with such a file deleted by hand ``make assets`` and
``make frontend`` said there was nothing to do, while start-up refused the
build and told the user to run them. Prints nothing when the build is whole
or has no stamp yet (make builds it anyway). Plain Python with no imports of
the project's: make runs it on every invocation, before any venv exists.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSET_DIR = ROOT / "src" / "app" / "static" / "dist"
FRONTEND_DIR = ROOT / "frontend" / "dist"
SUFFIXES = {"br": ".br", "gzip": ".gz", "zstd": ".zst"}
_LINKED = re.compile(r"""(?:src|href)="[^"]*?/(assets/[^"?#]+)""")


def asset_files() -> list[Path]:
    manifest = json.loads((ASSET_DIR / "manifest.json").read_text("utf-8"))
    return [
        ASSET_DIR / (entry["path"] + suffix)
        for entry in manifest.values()
        for suffix in ["", *(SUFFIXES.get(coding, "") for coding in entry.get("encodings", {}))]
    ]


def frontend_files() -> list[Path]:
    index = (FRONTEND_DIR / "index.html").read_text("utf-8")
    return [FRONTEND_DIR / path for path in _LINKED.findall(index)]


def gone(kind: str) -> bool:
    try:
        files = asset_files() if kind == "assets" else frontend_files()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False  # no stamp, or one make will rebuild by its time anyway
    return not all(path.is_file() for path in files)


if __name__ == "__main__":
    if gone(sys.argv[1]):
        print("gone")
