"""Compression levels for dynamic responses: bytes and CPU per response, per level.

``make bench`` (``bench/run.py``) adds :func:`report` for the home page it
captured to ``bench/results/latest.md``; ``python -m bench.levels page.html``
prints the same tables for any HTML file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from shipshape.compression import DYNAMIC_LEVELS, compress

LEVELS = {
    "zstd": [1, 2, 3, 4, 6],
    "br": [1, 2, 3, 4, 5, 6],
    "gzip": [1, 3, 5, 6, 9],
    "deflate": [1, 6],
}
#: Flask-Compress 1.25's defaults (COMPRESS_BR_LEVEL, COMPRESS_LEVEL, COMPRESS_ZSTD_LEVEL).
FLASK_COMPRESS = {"br": 4, "gzip": 6, "zstd": 3, "deflate": 6}
INTRO = """\
Two bodies a Shipshape app makes per request (the home page HTML and a 30 KB
JSON list) compressed at each level of each coding through
`shipshape.compression`, the code the middleware runs. For each level: the bytes,
the bytes relative to Flask-Compress's default for that coding (br 4, gzip 6,
zstd 3, deflate 6) and to its brotli output, and the median CPU per response,
compressing back to back with warm caches.

That CPU figure is a floor. Brotli's match finder zeroes a hash table of a
fixed size however small the body (256 KiB at levels 2 and 3, 512 KiB at 4),
which in a worker evicts the rest of the request's working set.
"""


def api_body() -> bytes:
    """A JSON list such as an API returns: 200 records, about 30 KB."""
    things = [
        {"id": n, "name": f"Thing {n}", "owner": f"user{n % 17}", "tags": ["a", "b"][: n % 3],
         "created": f"2026-11-{n % 28 + 1:02d}T10:{n % 60:02d}:00Z", "done": n % 4 == 0}
        for n in range(200)
    ]  # fmt: skip
    return json.dumps({"things": things}, indent=1).encode()


def _time(call: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def measure(body: bytes, rounds: int = 300) -> list[tuple[str, int, int, float]]:
    """``(coding, level, bytes, µs)`` for every level in :data:`LEVELS`."""
    rows = []
    for coding, levels in LEVELS.items():
        for level in levels:
            size = len(compress(body, coding, level))

            def call(coding: str = coding, level: int = level) -> bytes:
                return compress(body, coding, level)

            rows.append((coding, level, size, _time(call, rounds)))
    return rows


def table(body: bytes, rows: list[tuple[str, int, int, float]]) -> str:
    sizes = {(coding, level): size for coding, level, size, _ in rows}
    lines = [
        "| coding | level | bytes | × Flask-Compress default | × Flask-Compress br | µs | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for coding, level, size, micros in rows:
        reference = sizes.get((coding, FLASK_COMPRESS[coding]), size)
        notes = []
        if DYNAMIC_LEVELS[coding] == level:
            notes.append("**Shipshape**")
        if FLASK_COMPRESS[coding] == level:
            notes.append("Flask-Compress")
        lines.append(
            f"| {coding} | {level} | {size:,} | {size / reference:.2f} "
            f"| {size / sizes[('br', FLASK_COMPRESS['br'])]:.2f} | {micros:.0f} "
            f"| {', '.join(notes)} |"
        )
    return f"{len(body):,} bytes uncompressed.\n\n" + "\n".join(lines) + "\n"


def report(home: bytes, depth: int = 1) -> str:
    """The tables in Markdown, the title at heading ``depth``."""
    api = api_body()
    title, section = "#" * depth, "#" * (depth + 1)
    return (
        f"{title} Compression levels for dynamic responses\n\n"
        + INTRO
        + f"\n{section} The home page HTML\n\n"
        + table(home, measure(home))
        + f"\n{section} A JSON list (API response)\n\n"
        + table(api, measure(api))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("page", type=Path, help="an HTML file, such as a saved home page")
    args = parser.parse_args()
    print(report(args.page.read_bytes()))


if __name__ == "__main__":
    main()
