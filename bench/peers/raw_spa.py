"""The ceiling for the single-page frontend: a raw ASGI app sending the same bytes.

The index as Shipshape served it at the start of the run (``BENCH_SPA_INDEX``,
compressed here once with br at Shipshape's dynamic level), and the build's
own precompressed ``.br`` files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.peers.raw_asgi import RawApp
from bench.peers.tozo_spa import BUILD
from shipshape.compression import DYNAMIC_LEVELS, compress

INDEX_KEY = "BENCH_SPA_INDEX"


def create_app() -> RawApp:
    index = compress(Path(os.environ[INDEX_KEY]).read_bytes(), "br", DYNAMIC_LEVELS["br"])
    files = {
        f"/app/assets/{path.name[:-3]}": path.read_bytes()
        for path in (BUILD / "assets").glob("*.br")
    }

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = str(scope["path"])
        if path in files:
            body, ctype = files[path], b"text/javascript; charset=utf-8"
        else:
            body, ctype = index, b"text/html; charset=utf-8"
        headers = [
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
            (b"content-encoding", b"br"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
