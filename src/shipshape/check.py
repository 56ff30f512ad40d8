"""``check --deploy``: audit the effective configuration before going live.

Like Django's ``check --deploy``, each finding has a stable id, a severity and
a fix. Errors make the command exit 1, so a deploy pipeline can gate on it::

    quart --app app check --deploy --workers 4
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import click
from quart import Quart

from shipshape.config import ConfigError, Settings, parse_workers
from shipshape.csp import Policy
from shipshape.exceptions import ShipshapeError
from shipshape.ratelimit.store import MemoryStore

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.severity.upper():7} {self.id}  {self.message}\n        fix: {self.fix}"


def secret_entropy_bits(secret: str | bytes) -> float:
    """Shannon entropy of the key's characters (or bytes) times its length: a weak-key
    smell test."""
    counts = Counter(secret)
    total = len(secret)
    per_char = -sum(n / total * math.log2(n / total) for n in counts.values())
    return per_char * total


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address (``[::1]`` as ``::1``; an IPv4-mapped one as its IPv4
    address), or ``None`` for a name."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:0.0.0.0 is every IPv4 interface
    return address


def _is_bind_all(host: str) -> bool:
    """``0.0.0.0`` or ``::`` (every interface): where to listen, never a site's name."""
    address = _address(host)
    return address is not None and address.is_unspecified


def _may_face_clients(host: str) -> bool:
    """Whether clients could reach this bind address without the proxy: every interface
    (``0.0.0.0``, ``::``), a public address, or a name this check cannot resolve.
    Loopback and a private address (the fix W007 suggests) are the proxy's to reach."""
    if _is_loopback(host):
        return False
    address = _address(host)
    return address is None or address.is_unspecified or not address.is_private


def _limits_in_memory(app: Quart) -> bool:
    """True when the app's rate limits live in this process, whatever ``REDIS_URL`` says."""
    limiter = getattr(app.extensions.get("shipshape"), "ratelimiter", None)
    return limiter is not None and isinstance(limiter.store, MemoryStore)


def run_checks(app: Quart, settings: Settings, *, deploy: bool, workers: int) -> list[Finding]:
    findings: list[Finding] = []

    def add(id_: str, severity: Severity, message: str, fix: str) -> None:
        findings.append(Finding(id_, severity, message, fix))

    if deploy and not settings.is_production:
        add(
            "shipshape.E001",
            "error",
            f"APP_ENV is {settings.app_env!r}, not production",
            "set APP_ENV=production",
        )
    if app.debug and (deploy or settings.is_production):
        add("shipshape.E002", "error", "debug mode is on", "unset QUART_DEBUG / app.debug")
    if settings.secret_key_generated:
        add(
            "shipshape.W003",
            "warning",
            "SECRET_KEY is generated per process: sessions end on restart "
            "and are not shared between workers",
            "set SECRET_KEY to a random value of 32+ bytes",
        )
    elif secret_entropy_bits(settings.secret_key) < 128:
        add(
            "shipshape.E004",
            "error",
            "SECRET_KEY looks weak (under 128 bits of entropy)",
            'use python3 -c "import secrets; print(secrets.token_hex(32))"',
        )
    if "*" in settings.allowed_hosts:
        add(
            "shipshape.W005",
            "warning",
            "ALLOWED_HOSTS allows any Host header",
            "list the site's host names in ALLOWED_HOSTS",
        )
    bind_all = [h for h in settings.allowed_hosts if _is_bind_all(h)]
    if bind_all:
        add(
            "shipshape.W018",
            "warning",
            f"ALLOWED_HOSTS holds {', '.join(bind_all)}, an address to listen on that no "
            "browser sends as a Host: requests to the site's real names are refused",
            "set ALLOWED_HOSTS to the site's host names (make serve uses $HOST,localhost "
            "when it is unset)",
        )
    if workers > 1 and _limits_in_memory(app):
        add(
            "shipshape.W006",
            "warning",
            f"rate limits are kept in memory with {workers} workers, so each limit "
            f"is multiplied by {workers}",
            "set REDIS_URL to share the limits between workers and hosts",
        )
    if settings.trusted_proxies > 0 and _may_face_clients(settings.host):
        add(
            "shipshape.W007",
            "warning",
            f"TRUSTED_PROXIES={settings.trusted_proxies} but the app binds {settings.host}, "
            "so clients may reach it directly and forge X-Forwarded-* headers",
            "bind to a private address only the proxy can reach, or set TRUSTED_PROXIES=0",
        )
    findings.extend(_security_findings(app, settings, deploy=deploy))
    assets = app.extensions["shipshape"].assets
    if assets is not None:
        try:  # what serving loads before it takes a request: a manifest missing or short
            assets.load(app)
        except ShipshapeError as exc:
            findings.append(config_error_finding(exc))
    if deploy:
        for deploy_check in app.extensions["shipshape"].deploy_checks:
            findings.extend(deploy_check())
    return findings


def _security_findings(app: Quart, settings: Settings, *, deploy: bool) -> list[Finding]:
    config = app.config
    findings: list[Finding] = []
    live = deploy or settings.is_production
    headers_on = config.get("SHIPSHAPE_HEADERS", False)
    if live and not (headers_on and config.get("SHIPSHAPE_HSTS")):
        findings.append(
            Finding(
                "shipshape.E008",
                "error",
                "HSTS is off, so a first visit or a typed http:// URL can be downgraded",
                "keep SHIPSHAPE_HEADERS and SHIPSHAPE_HSTS on in production",
            )
        )
    if headers_on:
        for key in ("SHIPSHAPE_CSP_HTML", "SHIPSHAPE_CSP_SPA", "SHIPSHAPE_CSP_API"):
            policy: Policy | None = config.get(key)
            unsafe = policy.unsafe_sources() if policy is not None else []
            if unsafe:
                findings.append(
                    Finding(
                        "shipshape.E009",
                        "error",
                        f"{key} allows {', '.join(unsafe)}, which lets injected script run",
                        "use nonces (csp_nonce()) or external files instead",
                    )
                )
        if live and config.get("SHIPSHAPE_CSP_REPORT_ONLY"):
            findings.append(
                Finding(
                    "shipshape.W011",
                    "warning",
                    "the CSP is report-only, so it blocks nothing",
                    "set SHIPSHAPE_CSP_REPORT_ONLY = False once the reports are clean",
                )
            )
    if live and not config.get("SHIPSHAPE_FORCE_HTTPS"):
        findings.append(
            Finding(
                "shipshape.W010",
                "warning",
                "plain-HTTP requests are not redirected to HTTPS by the app",
                "set SHIPSHAPE_FORCE_HTTPS = True unless the proxy redirects",
            )
        )
    if live and not config.get("SHIPSHAPE_HOST_CHECK"):
        findings.append(
            Finding(
                "shipshape.E012",
                "error",
                "the Host header is not checked against ALLOWED_HOSTS",
                "set SHIPSHAPE_HOST_CHECK = True",
            )
        )
    if not config.get("SHIPSHAPE_CSRF"):
        findings.append(
            Finding(
                "shipshape.W013",
                "warning",
                "CSRF protection is off for the whole app",
                "set SHIPSHAPE_CSRF = True and mark exceptions with @csrf_exempt",
            )
        )
    return findings


def report(findings: list[Finding], echo: Callable[[str], object]) -> int:
    """Print each finding and a summary; the exit status (1 on any error)."""
    for finding in findings:
        echo(str(finding))
    errors = sum(f.severity == "error" for f in findings)
    echo(f"{errors} error(s), {len(findings) - errors} warning(s)")
    return 1 if errors else 0


def config_error_finding(error: Exception) -> Finding:
    """A start-up error as a finding, so ``check`` reports it like the rest: a setting's
    names the table that documents it; any other (a missing build) says what to do."""
    if not isinstance(error, ConfigError):
        return Finding("shipshape.E000", "error", str(error), "do what the message says")
    from shipshape.extension import ALL_OPTIONS  # noqa: PLC0415 - it imports this module

    keys = {option.key for option in ALL_OPTIONS}
    table = "docs/configuration.md" if error.name in keys else "the README"
    return Finding("shipshape.E000", "error", str(error), f"set {error.name} as {table} says")


def check_command(app: Quart, settings: Settings) -> click.Command:
    @click.command("check", help="Audit the effective configuration.")
    @click.option("--deploy", is_flag=True, help="Also run the production deployment checks.")
    @click.option(
        "--workers",
        type=int,
        default=lambda: parse_workers(os.environ.get("WEB_CONCURRENCY")),
        show_default="WEB_CONCURRENCY or the core count",
        help="How many worker processes will serve the app.",
    )
    def command(deploy: bool, workers: int) -> None:
        status = report(run_checks(app, settings, deploy=deploy, workers=workers), click.echo)
        if status:
            raise SystemExit(status)

    return command
