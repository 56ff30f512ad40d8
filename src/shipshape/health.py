"""Liveness (``/healthz``) and readiness (``/readyz``) endpoints.

``/healthz`` answers 200 whenever the process can serve a request; it checks
nothing, so an orchestrator never restarts a healthy process because a
database is down. ``/readyz`` runs every registered check concurrently, each
under a timeout, and answers 200 when all pass or 503 otherwise, with a JSON
body listing each check; probes that arrive while a run is under way share
it, so a flood of probes (they are public and never rate limited) makes one
run at a time::

    health.add_check("database", ping_database)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from quart import Blueprint, Quart, Response, current_app, jsonify

from shipshape.logging import first_line
from shipshape.options import Option, apply, is_path, is_seconds
from shipshape.policy import set_blueprint_columns
from shipshape.typing import ReadinessCheck

logger = logging.getLogger("shipshape.health")

# A readiness probe must answer before the orchestrator's own timeout
# (Kubernetes' default is 1 s); a check slower than this counts as failed.
DEFAULT_CHECK_TIMEOUT = 0.9  # seconds

OPTIONS: tuple[Option, ...] = (
    Option("SHIPSHAPE_HEALTH_PATH", "/healthz", "a path", "the liveness probe", is_path),
    Option("SHIPSHAPE_READY_PATH", "/readyz", "a path", "the readiness probe", is_path),
    Option(
        "SHIPSHAPE_READY_TIMEOUT",
        DEFAULT_CHECK_TIMEOUT,
        "seconds, over 0 and at most 60",
        "time allowed each readiness check, under Kubernetes' 1 s probe timeout",
        is_seconds(0, 60),
        shown="`0.9` s",
    ),
)


class Health:
    """Registers ``/healthz`` and ``/readyz`` and holds the readiness checks.

    Config: ``SHIPSHAPE_HEALTH_PATH``, ``SHIPSHAPE_READY_PATH`` and
    ``SHIPSHAPE_READY_TIMEOUT`` (seconds per check).
    """

    def __init__(self, app: Quart | None = None) -> None:
        self.checks: dict[str, ReadinessCheck] = {}
        #: The checks' run that probes arriving now share (see :meth:`readyz`).
        self._running: asyncio.Future[dict[str, dict[str, Any]]] | None = None
        #: Each failing check's last logged reason: a line when it changes, not per probe.
        self._failing: dict[str, str] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        apply(app, OPTIONS)
        blueprint = Blueprint("shipshape_health", __name__)
        # Probes are exempt from rate limits: an orchestrator polls them often,
        # and a refused probe would take a healthy process out of service.
        set_blueprint_columns(blueprint, rate_exempt=True)
        blueprint.add_url_rule(app.config["SHIPSHAPE_HEALTH_PATH"], "healthz", self.healthz)
        blueprint.add_url_rule(app.config["SHIPSHAPE_READY_PATH"], "readyz", self.readyz)
        app.register_blueprint(blueprint)
        app.after_serving(self._stop)

    async def _stop(self) -> None:
        """A run still going when serving ends (its probes gone) ends before what it
        checks (the database's pool, the store) is closed."""
        running, self._running = self._running, None
        if running is not None and not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        """Register a coroutine function that raises when ``name`` is not usable."""
        if name in self.checks:
            raise ValueError(f"readiness check {name!r} is already registered")
        self.checks[name] = check

    async def healthz(self) -> Response:
        response = jsonify({"status": "ok"})
        response.headers["Cache-Control"] = "no-store"
        return response

    async def readyz(self) -> Response:
        # Probes that arrive while the checks run share that run: the probe is public and
        # never rate limited, so a flood of them costs one check at a time, not one each.
        running = self._running
        loop = asyncio.get_running_loop()
        if running is None or running.done() or running.get_loop() is not loop:
            timeout = float(current_app.config["SHIPSHAPE_READY_TIMEOUT"])
            running = self._running = asyncio.ensure_future(self._check_all(timeout))
        checks = await asyncio.shield(running)
        ready = all(result["ok"] for result in checks.values())
        response = jsonify({"status": "ok" if ready else "unavailable", "checks": checks})
        response.status_code = 200 if ready else 503
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _check_all(self, timeout: float) -> dict[str, dict[str, Any]]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(n, self.checks[n], timeout) for n in names))
        return dict(zip(names, results, strict=True))

    async def _run(self, name: str, check: ReadinessCheck, timeout: float) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            note = await asyncio.wait_for(check(), timeout)
        except Exception as exc:  # any failure means "not ready"; the probe never 500s
            error = "timed out" if isinstance(exc, TimeoutError) else _reason(exc)
            # An orchestrator probes every few seconds through an outage: a line when a
            # check starts failing or fails another way, not one per probe, and the
            # traceback only for whoever turns on DEBUG.
            detail = first_line(exc)
            reason = error + (f" ({detail})" if detail not in error else "")
            if self._failing.get(name) != reason:
                self._failing[name] = reason
                logger.warning("readiness check %s failed: %s", name, reason)
            logger.debug("readiness check %s failed", name, exc_info=exc)
            return {"ok": False, "error": error, "duration_ms": _ms(start)}
        if self._failing.pop(name, None) is not None:
            logger.warning("readiness check %s passes again", name)
        result: dict[str, Any] = {"ok": True, "duration_ms": _ms(start)}
        if note:
            result["degraded"] = note  # serving, but say so
        return result


def _reason(error: Exception) -> str:
    """What the probe says about a failed check: the class name, and the
    message when the check wrote one for operators (:class:`NotReadyError`)."""
    if isinstance(error, NotReadyError):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__


class NotReadyError(Exception):
    """Raised by a readiness check whose message is safe to show in ``/readyz``."""


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
