"""What every peer serves: the bytes the benchmark harness captured from Shipshape.

The harness names the files in the environment of each server it starts
(``bench/stacks.py``); the peers read them in their app factories, never on
import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

BODY_FILE_KEY = "BENCH_BODY_FILE"
STATIC_DIR_KEY = "BENCH_STATIC_DIR"


def home_body(environ: Mapping[str, str] = os.environ) -> bytes:
    path = environ.get(BODY_FILE_KEY)
    if not path:
        raise RuntimeError(
            f"{BODY_FILE_KEY} is not set; it names the captured home page, "
            "which `python -m bench.run` sets for each server it starts"
        )
    return Path(path).read_bytes()


def static_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get(STATIC_DIR_KEY, "src/app/static/dist")).resolve()
