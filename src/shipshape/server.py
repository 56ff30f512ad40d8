"""The production server: granian, bounded by :class:`~shipshape.config.ServerLimits`.

``make serve`` needs a server that bounds, by itself, what a hostile client
can make a worker hold: the header block's size and field count, the time to
send it, an idle keep-alive connection and the number of open connections.
granian (hyper underneath) does all five with its own settings. uvicorn with
httptools bounds neither the header block nor the time to send it; uvicorn's
h11 mode and hypercorn parse a block past their byte bound when it arrives
in one read, count no fields, and keep any number of idle connections
(docs/security.md, "Limits and timeouts", has what each did). The limits map
onto granian's settings like so:

- header bytes: ``http1_settings.max_buffer_size``; a request line and
  headers that do not fit get 431 and the connection is closed;
- header count: fixed at 100 by hyper, answered with 431;
- header time: ``http1_settings.header_read_timeout``, counted from when the
  connection opens or the previous response ends, so it is also the
  keep-alive idle limit;
- connections: ``backpressure``, per worker; the others wait in the listen
  backlog until one closes.

Only HTTP/1.1 is served: HTTP/2 over cleartext is only reached by prior
knowledge, and granian bounds its header lists at 16 MiB. The server's own log
lines go through :class:`~shipshape.logging.JsonLineFormatter` in
production, next to Shipshape's own::

    serve("app:create_app", host="0.0.0.0", port=8000, workers=2,
          limits=settings.server, json_lines=True)
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import signal
import socket
import sys
from typing import Any

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings

from shipshape.config import ServerLimits
from shipshape.exceptions import ShipshapeError

#: Seconds a worker has to stop after a shutdown begins; one that has not (a request
#: that never ends, a shutdown hook that hangs, or granian's own hang when a busy
#: worker is signalled itself, granian#875) is killed, so that stopping always ends.
#: gunicorn's ``graceful_timeout`` has the same default.
SHUTDOWN_TIMEOUT = 30

# The loggers granian writes to: its own (Rust and Python) and the access log.
GRANIAN_LOGGERS = ("_granian", "granian.access")


def log_config(*, json_lines: bool) -> dict[str, Any] | None:
    """A ``logging.config.dictConfig`` for granian's processes, or ``None`` for its own.

    With ``json_lines`` the server's records, and anything that reaches the
    root logger (asyncio's "Task exception was never retrieved", a library's
    warnings), become JSON lines on stderr, next to Shipshape's request lines.
    """
    if not json_lines:
        return None
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "json",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "shipshape.logging.RequestIdFilter"}},
        "formatters": {"json": {"()": "shipshape.logging.JsonLineFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            name: {"handlers": ["json"], "level": "INFO", "propagate": False}
            for name in GRANIAN_LOGGERS
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }


def granian_options(limits: ServerLimits) -> dict[str, Any]:
    """The keyword arguments of ``granian.Granian`` that enforce ``limits``."""
    return {
        "http": HTTPModes.http1,
        "http1_settings": HTTP1Settings(
            header_read_timeout=round(limits.header_timeout * 1000),  # milliseconds
            max_buffer_size=limits.max_header_bytes,
        ),
        "backpressure": limits.max_connections,
    }


def serve(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    limits: ServerLimits,
    json_lines: bool,
    shutdown_timeout: int = SHUTDOWN_TIMEOUT,
) -> None:
    """Serve the app that the factory ``target`` (``module:function``) builds, until stopped
    (and at most ``shutdown_timeout`` seconds after a stop begins)."""
    Granian(
        target,
        address=bind_address(host, port),
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        # uvicorn's supervisor restarts a worker that dies; granian only when asked.
        respawn_failed_workers=True,
        workers_kill_timeout=shutdown_timeout,
        # Shipshape logs each request itself, with the client address that
        # TRUSTED_PROXIES resolves, so the server writes no access log.
        log_access=False,
        log_dictconfig=log_config(json_lines=json_lines),
        **granian_options(limits),
    ).serve()


def stop_with_parent() -> None:
    """Stop this process (SIGTERM, the graceful stop) when its parent process ends.

    ``make serve`` runs the server as make's child, and a signal sent to make
    alone (``kill``, ``docker stop`` with make as PID 1, a supervisor that
    signals the process it started) ends make without reaching the server:
    granian and its workers ran on as orphans, holding the port. With this, the
    server stops as make does. Linux only (``prctl``); elsewhere a no-op. Only
    for a server started by make: ``nohup`` or a shell that exits must not stop
    a server started on purpose to outlive it.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # not permitted here: the server runs on as before
    if os.getppid() != parent:  # the parent ended before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class BindError(ShipshapeError):
    """The server cannot listen where it was asked to."""


def bind_address(host: str, port: int) -> str:
    """``host`` as the IP address granian binds, checked free.

    granian takes no host names (``HOST=localhost`` raised a ``ValueError`` and
    its traceback), so a name is resolved as uvicorn would resolve it; and a port
    another process holds is said in one line, where granian printed eighty
    lines of Python and Rust backtrace. (A port taken between this check and
    granian's bind still gets granian's own error.)
    """
    address = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        try:
            address = str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
        except (OSError, UnicodeError) as exc:
            raise BindError(f"HOST: cannot resolve {host!r} to an address to listen on") from exc
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as granian binds
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise BindError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return address
