"""What every peer serves: the bytes the benchmark harness captured from Shipshape.

The harness names the files, and for the rate-limit stacks the Redis server,
in the environment of each server it starts (``bench/stacks.py``); the peers
read them in their app factories, never on import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: The project's root, found without importing ``app``: importing it imports
#: Shipshape, which speeds up WTForms in the importing process (``shipshape.forms``),
#: and a peer must run on its own packages as they ship.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

BODY_FILE_KEY = "BENCH_BODY_FILE"
STATIC_DIR_KEY = "BENCH_STATIC_DIR"
REDIS_URL_KEY = "BENCH_REDIS_URL"
#: The limit of the rate-limit scenarios' route: high enough that every request is admitted.
ADMIT_ALL = "1000000/second"
#: What the rate-limit peers answer: a tiny JSON body, the same bytes on every stack.
TINY_JSON = b'{"ok":true}'


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


def redis_url(environ: Mapping[str, str] = os.environ) -> str:
    """The redis-server that ``make bench`` starts for the rate-limit scenarios."""
    url = environ.get(REDIS_URL_KEY)
    if not url:
        raise RuntimeError(
            f"{REDIS_URL_KEY} is not set; it names the redis-server that "
            "`make bench` starts for the rate-limit scenarios and sets for each server"
        )
    return url
