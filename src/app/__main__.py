"""``python -m app run|serve|check``: start the app after checking its settings.

The settings and the asset manifest are checked here, in the parent process,
before any server starts, so a bad value prints one line naming it and exits
with status 2 instead of a traceback from every worker. ``run`` is uvicorn
with reload, for development (:mod:`shipshape.devserver`); ``serve`` is
granian with the ``SERVER_*`` limits (:mod:`shipshape.server`), for production.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from app import PROJECT_ROOT, create_app
from shipshape import Shipshape, ShipshapeError, devserver, server
from shipshape.check import check_command, config_error_finding, report, run_checks
from shipshape.config import MAX_WORKERS, parse_workers

FINDINGS = logging.getLogger("shipshape.check")


def worker_count(text: str) -> int:
    """``--workers``: the range ``WEB_CONCURRENCY`` accepts; argparse refuses anything else."""
    try:
        number = int(text, 10)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 1 to {MAX_WORKERS}, got {text!r}"
        )
    return number


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="development server with reload")
    serve = commands.add_parser("serve", help="production server, one worker per core")
    serve.add_argument("--workers", type=worker_count, default=None)
    check = commands.add_parser("check", help="audit the configuration")
    check.add_argument("--deploy", action="store_true")
    check.add_argument("--workers", type=worker_count, default=None)
    args = parser.parse_args(argv)

    if args.command == "serve":
        os.environ.setdefault("APP_ENV", "production")
    try:
        app = create_app()
        shipshape: Shipshape = app.extensions["shipshape"]
        if args.command != "check" and shipshape.assets is not None:
            shipshape.assets.load(app)
        # Only serve and check start or audit workers; --workers wins over the variable.
        workers = 1
        if args.command != "run":
            workers = args.workers or parse_workers(os.environ.get("WEB_CONCURRENCY"))
    except ShipshapeError as exc:
        if args.command == "check":  # report it as a finding, like the other problems
            return report([config_error_finding(exc)], print)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = shipshape.settings

    if args.command == "check":
        options = ["--workers", str(workers)] + (["--deploy"] if args.deploy else [])
        return int(check_command(app, settings).main(options, standalone_mode=False) or 0)

    if args.command == "serve":
        # As Django's runserver does: say what check would, without stopping.
        # Memory rate limits with several workers (W006) multiply every limit.
        # Through the app's logging, so that production's log stays JSON lines.
        for finding in run_checks(app, settings, deploy=False, workers=workers):
            level = logging.ERROR if finding.severity == "error" else logging.WARNING
            FINDINGS.log(level, "%s %s", finding.id, finding.message)
        if os.environ.get("MAKELEVEL"):  # run by make serve: stop when make is stopped
            server.stop_with_parent()
        try:
            server.serve(
                "app:create_app",
                host=settings.host,
                port=settings.port,
                workers=workers,
                limits=settings.server,
                json_lines=settings.is_production,
            )
        except server.BindError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        return 0

    try:  # a name that does not resolve, a port taken: one line, as for serve
        server.bind_address(settings.host, settings.port)
    except server.BindError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    src = str(PROJECT_ROOT / "src")
    devserver.run(  # uvicorn with reload, whose worker says why the app did not start
        "app:create_app",
        host=settings.host,
        port=settings.port,
        reload_dirs=[src],
        # A changed template, stylesheet or script restarts the worker, whose
        # start-up rebuilds the assets; the build output must not retrigger it.
        reload_includes=["*.py", "*.html", "*.css", "*.js"],
        reload_excludes=["*/static/dist/*", "*.min.*"],
        access_log=False,  # Shipshape logs each request itself
        proxy_headers=False,  # TRUSTED_PROXIES decides, not the server
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
