"""``python -m bench.granian module:factory --workers N --port P``: an app on granian,
with the settings ``make serve`` gives Shipshape (``shipshape.server.serve``,
the ``SERVER_*`` limits at their defaults), so every stack on granian runs
under the same server settings."""

from __future__ import annotations

import argparse

from shipshape.config import ServerLimits
from shipshape.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("factory")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    limits = ServerLimits.from_mapping({})
    serve(
        args.factory,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        limits=limits,
        json_lines=False,
    )


if __name__ == "__main__":
    main()
