"""What every peer serves: the bytes the benchmark harness captured from Shipshape."""

from __future__ import annotations

import os
from pathlib import Path

BODY_FILE = Path(os.environ.get("BENCH_BODY_FILE", "/tmp/shipshape-bench-home.html"))  # noqa: S108
STATIC_DIR = Path(os.environ.get("BENCH_STATIC_DIR", "src/app/static/dist")).resolve()


def home_body() -> bytes:
    return BODY_FILE.read_bytes()
