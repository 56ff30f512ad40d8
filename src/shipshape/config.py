"""Typed, validated settings read once from the environment.

Settings flow one way: the environment (or an injected mapping) is copied into
``app.config`` by the app factory, overlaid by the factory's ``config``
argument, and :meth:`Settings.from_mapping` turns the result into one frozen
object. Nothing reads ``os.environ`` at import time.

Every bad value raises :class:`ConfigError` whose message is one line naming
the variable and what it accepts, so start-up can print it without a
traceback::

    settings = Settings.from_mapping({"APP_ENV": "production", "SECRET_KEY": key})
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

from shipshape.exceptions import ShipshapeError

AppEnv = Literal["development", "testing", "production"]
StoreErrorPolicy = Literal["open", "closed"]

APP_ENVS: tuple[AppEnv, ...] = ("development", "testing", "production")

#: The variables of DESIGN.md's env table; ``environ_config`` copies only these.
ENV_NAMES = (
    "APP_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "TRUSTED_PROXIES",
    "ALLOWED_HOSTS",
    "RATELIMIT_DEFAULT",
    "RATELIMIT_ON_STORE_ERROR",
    "HOST",
    "PORT",
    "SERVER_MAX_HEADER_BYTES",
    "SERVER_HEADER_TIMEOUT",
    "SERVER_MAX_CONNECTIONS",
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///instance/app.db"
DEFAULT_RATELIMIT = "2/second;60/minute"
# Development and testing only answer to the loopback names; production has
# no default because a wrong guess would either break the site or accept any
# Host header (cache poisoning, password-reset link hijacking).
DEV_ALLOWED_HOSTS = ("127.0.0.1", "localhost")
# 32 bytes is the HMAC-SHA256 block-size floor that OWASP and Django's
# check --deploy recommend for signing keys.
MIN_SECRET_BYTES = 32

DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
REDIS_SCHEMES = ("redis", "rediss", "valkey", "valkeys", "unix")
RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}

_HOST_RE = re.compile(r"^(\*|\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$")
_IPV6_RE = re.compile(r"^\[[0-9a-f:.]+\]$")
#: ASCII digits only, as parse_int takes: Python's \d and int() read "１" as 1.
_RATE_RE = re.compile(r"^\s*([0-9]+)\s*(?:/|per)\s*([0-9]+)?\s*(second|minute|hour|day)s?\s*$")
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")  # what parse_int takes: ASCII digits, no separators
_DECIMAL_RE = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")  # and parse_seconds


class ConfigError(ShipshapeError, ValueError):
    """A setting is missing or malformed; the message is one line naming it."""

    def __init__(self, name: str, accepts: str, value: object = None) -> None:
        shown = "" if value is None else f", got {_redact(name, value)!r}"
        super().__init__(f"{name}: expected {accepts}{shown}")
        self.name = name


def _redact(name: str, value: object) -> object:
    """``value`` as an error line may show it: the secret key as its length only, and a
    URL's password (``DATABASE_URL``, ``REDIS_URL``, any other) as ``***``, as
    SQLAlchemy shows a URL. The line goes to terminals, CI logs and crash reports."""
    if name == "SECRET_KEY" and isinstance(value, str | bytes):
        size = len(value.encode() if isinstance(value, str) else value)
        return f"<{size} byte{'' if size == 1 else 's'}>"
    if isinstance(value, str):
        return QUERY_PASSWORD.sub(r"\1***", URL_PASSWORD.sub(r"\1***@", value))
    return value


#: ``user:password@`` after a URL's ``//``, or at the start of a URL with no scheme (not a
#: scheme's own colon). The password runs to the last ``@``: a generated one may hold
#: a ``/``, which is also what makes the URL unreadable and so echoed. Hiding too much
#: of an error line is harmless; showing a password is not.
URL_PASSWORD = re.compile(r"((?:^|//)[^/@:]*:)(?!//).*@")
#: A password given as a query parameter (asyncpg takes ``?password=``).
QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``count`` requests per ``period`` seconds."""

    count: int
    period: int

    def __str__(self) -> str:
        return f"{self.count}/{self.period}s"


# What one production worker lets a client hold (docs/security.md, "Limits and
# timeouts"). The request line and headers together: 16 KiB is Node.js's
# default and twice what Apache allows one field; a browser's headers with a
# few cookies take 1-4 KiB. The server (granian, on hyper) cannot buffer less
# than 8 KiB.
DEFAULT_MAX_HEADER_BYTES = 16 * 1024  # bytes
MIN_MAX_HEADER_BYTES = 8 * 1024
#: The largest bound granian keeps to the byte, tried over raw sockets: set higher, it let
#: more through (at 28 KiB, 36 KiB of headers; at 32 KiB, 48 KiB; at 1 MiB, 2 MB).
MAX_MAX_HEADER_BYTES = 24 * 1024
# From the moment a connection opens, or its previous response ends, to the
# last byte of the next request's headers: it cuts off slowloris senders and
# idle keep-alive connections alike (the server counts both with one timer).
# 10 s lets a lossy mobile link retransmit a few times; it is what a slow
# sender can hold a connection for, and how long a browser may keep one idle.
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds
MAX_HEADER_TIMEOUT = 60.0  # seconds; granian's own upper bound
# Open connections per worker, idle ones included; more wait in the listen
# backlog until one closes. Each costs a file descriptor, and 1024 is the usual
# soft limit per process; a worker serves about a thousand pages a second, so
# a thousand connections are never all busy.
DEFAULT_MAX_CONNECTIONS = 1000  # per worker
MAX_MAX_CONNECTIONS = 65535


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The bounds the production server (``make serve``) puts on each client.

    Read from ``SERVER_MAX_HEADER_BYTES``, ``SERVER_HEADER_TIMEOUT`` and
    ``SERVER_MAX_CONNECTIONS``; the header count is fixed at 100 by the server.
    """

    max_header_bytes: int
    header_timeout: float  # seconds
    max_connections: int  # per worker

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ServerLimits:
        return cls(
            max_header_bytes=parse_int(
                values.get("SERVER_MAX_HEADER_BYTES"),
                "SERVER_MAX_HEADER_BYTES",
                DEFAULT_MAX_HEADER_BYTES,
                MIN_MAX_HEADER_BYTES,
                MAX_MAX_HEADER_BYTES,
            ),
            header_timeout=parse_seconds(
                values.get("SERVER_HEADER_TIMEOUT"),
                "SERVER_HEADER_TIMEOUT",
                DEFAULT_HEADER_TIMEOUT,
                MAX_HEADER_TIMEOUT,
            ),
            max_connections=parse_int(
                values.get("SERVER_MAX_CONNECTIONS"),
                "SERVER_MAX_CONNECTIONS",
                DEFAULT_MAX_CONNECTIONS,
                1,
                MAX_MAX_CONNECTIONS,
            ),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Every variable of the env table, parsed and checked."""

    app_env: AppEnv
    secret_key: str | bytes
    secret_key_generated: bool
    database_url: str
    redis_url: str | None
    trusted_proxies: int
    allowed_hosts: tuple[str, ...]
    ratelimit_default: tuple[RateLimit, ...]
    ratelimit_on_store_error: StoreErrorPolicy
    host: str
    port: int
    server: ServerLimits

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def is_development(self) -> bool:
        return self.app_env == "development"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Parse the env-table names from ``values`` (strings or typed values)."""
        app_env = parse_app_env(values.get("APP_ENV"))
        secret_key, generated = parse_secret_key(values.get("SECRET_KEY"), app_env)
        return cls(
            app_env=app_env,
            secret_key=secret_key,
            secret_key_generated=generated,
            database_url=parse_database_url(values.get("DATABASE_URL")),
            redis_url=parse_redis_url(values.get("REDIS_URL")),
            trusted_proxies=parse_int(values.get("TRUSTED_PROXIES"), "TRUSTED_PROXIES", 0, 0, 32),
            allowed_hosts=parse_allowed_hosts(values.get("ALLOWED_HOSTS"), app_env),
            ratelimit_default=parse_rate_limits(values.get("RATELIMIT_DEFAULT")),
            ratelimit_on_store_error=parse_store_error_policy(
                values.get("RATELIMIT_ON_STORE_ERROR")
            ),
            host=parse_host(values.get("HOST")),
            port=parse_int(values.get("PORT"), "PORT", 5000, 1, 65535),
            server=ServerLimits.from_mapping(values),
        )


def environ_config(environ: Mapping[str, str]) -> dict[str, str]:
    """The env-table variables that are set (and not blank) in ``environ``."""
    return {name: environ[name] for name in ENV_NAMES if environ.get(name, "").strip()}


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_app_env(value: object) -> AppEnv:
    if _blank(value):
        return "development"
    text = str(value).strip().lower()
    if text not in APP_ENVS:
        raise ConfigError("APP_ENV", "one of development, testing, production", value)
    return text  # narrowed to AppEnv by the membership test


def parse_secret_key(value: object, app_env: AppEnv) -> tuple[str | bytes, bool]:
    """The key, as text or as bytes (Quart takes either), and whether it was made here."""
    if _blank(value):
        if app_env == "production":
            raise ConfigError(
                "SECRET_KEY",
                f"a random secret of at least {MIN_SECRET_BYTES} bytes in production "
                '(python3 -c "import secrets; print(secrets.token_hex(32))")',
            )
        # A per-process key: sessions do not survive a restart, which is the
        # point in development and testing.
        return secrets.token_hex(32), True
    if isinstance(value, bytes) and len(value) >= MIN_SECRET_BYTES:
        return value, False
    if not isinstance(value, str) or len(value.encode()) < MIN_SECRET_BYTES:
        raise ConfigError("SECRET_KEY", f"at least {MIN_SECRET_BYTES} bytes", value)
    return value, False


def parse_int(value: object, name: str, default: int, low: int, high: int) -> int:
    if _blank(value):
        return default
    if isinstance(value, bool):
        raise ConfigError(name, f"an integer from {low} to {high}", value)
    if isinstance(value, int):
        number = value
    elif _INTEGER_RE.fullmatch(text := str(value).strip()):
        number = int(text)
    else:  # int() would take "16_384" and non-ASCII digits; a setting is plain digits
        raise ConfigError(name, f"an integer from {low} to {high}", value)
    if not low <= number <= high:
        raise ConfigError(name, f"an integer from {low} to {high}", value)
    return number


def parse_seconds(value: object, name: str, default: float, high: float) -> float:
    """A duration in seconds from 0.1 to ``high``: ``10``, ``2.5``."""
    if _blank(value):
        return default
    accepts = f"a number of seconds from 0.1 to {high:g}"
    if isinstance(value, bool):
        raise ConfigError(name, accepts, value)
    if isinstance(value, int | float):
        number = float(value)
    elif _DECIMAL_RE.fullmatch(text := str(value).strip()):
        number = float(text)
    else:  # float() would take "1_0", "1e1", "inf" and non-ASCII digits
        raise ConfigError(name, accepts, value)
    if not 0.1 <= number <= high:  # NaN fails this too
        raise ConfigError(name, accepts, value)
    return number


def _split_url(name: str, value: object, schemes: tuple[str, ...], accepts: str) -> SplitResult:
    """Split a URL, refusing unknown schemes and bad ports with one clear line."""
    text = str(value).strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(name, accepts, value) from None
    if parts.scheme not in schemes or "://" not in text:
        raise ConfigError(name, accepts, value)
    return parts


#: What a postgresql+asyncpg URL's query may set: asyncpg's ``connect()`` arguments
#: that a string can give (SQLAlchemy passes the query to it), and SQLAlchemy's own.
POSTGRES_QUERY_KEYS = frozenset({
    "host", "port", "user", "password", "passfile", "service", "servicefile", "database",
    "timeout", "statement_cache_size", "max_cached_statement_lifetime",
    "max_cacheable_statement_size", "command_timeout", "ssl", "direct_tls",
    "target_session_attrs", "krbsrvname", "gsslib", "prepared_statement_cache_size",
})  # fmt: skip


def parse_database_url(value: object) -> str:
    """The URL to connect with. PostgreSQL's: a host in the authority or, for a unix
    socket, as ``?host=/run/postgresql``; libpq's ``sslmode=`` is asyncpg's ``ssl=``,
    which takes the same values; any other query key asyncpg would not take is refused
    here, where it failed at the first connection with a traceback."""
    if _blank(value):
        return DEFAULT_DATABASE_URL
    accepts = "a sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host/db URL"
    parts = _split_url("DATABASE_URL", value, DATABASE_SCHEMES, accepts)
    if parts.scheme == "sqlite+aiosqlite":
        if parts.netloc or not parts.path:
            raise ConfigError("DATABASE_URL", accepts, value)
        return str(value).strip()
    query = parse_qsl(parts.query, keep_blank_values=True)
    if "sslmode" in dict(query) and "ssl" not in dict(query):
        query = [("ssl" if key == "sslmode" else key, item) for key, item in query]
    unknown = sorted({key for key, _ in query} - POSTGRES_QUERY_KEYS)
    if unknown:
        raise ConfigError(
            "DATABASE_URL",
            f"query parameters that asyncpg takes ({unknown[0]!r} is not one; "
            "sslmode=require is written ssl=require)",
            value,
        )
    if not parts.hostname and not dict(query).get("host"):
        raise ConfigError("DATABASE_URL", accepts, value)
    # The query replaced in the text as written: urlunsplit would drop the `//` of a URL
    # with nothing before its path (postgresql+asyncpg:///db?host=/run/postgresql).
    text = str(value).strip()
    return text.split("?", 1)[0] + ("?" + urlencode(query, safe="/") if query else "")


def parse_redis_url(value: object) -> str | None:
    if _blank(value):
        return None
    accepts = "a redis://, rediss://, valkey://, valkeys:// or unix:// URL"
    parts = _split_url("REDIS_URL", value, REDIS_SCHEMES, accepts)
    if parts.scheme == "unix" and not parts.path:
        raise ConfigError("REDIS_URL", accepts, value)
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError("REDIS_URL", accepts, value)
    db = parts.path.lstrip("/")
    if parts.scheme != "unix" and db and not db.isdigit():
        raise ConfigError("REDIS_URL", accepts + " with an optional numeric /db", value)
    return str(value).strip()


def parse_allowed_hosts(value: object, app_env: AppEnv) -> tuple[str, ...]:
    accepts = (
        "a comma-separated list of host names (example.com, .example.com for "
        "subdomains, or * to allow any)"
    )
    if _blank(value):
        if app_env == "production":
            raise ConfigError("ALLOWED_HOSTS", accepts + " in production")
        return DEV_ALLOWED_HOSTS
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    hosts = tuple(_bracketed(str(item).strip().lower()) for item in items if str(item).strip())
    if not hosts:
        raise ConfigError("ALLOWED_HOSTS", accepts, value)
    for host in hosts:
        if not (_HOST_RE.match(host) or _IPV6_RE.match(host)):
            raise ConfigError("ALLOWED_HOSTS", accepts, value)
    return hosts


def _bracketed(host: str) -> str:
    """A bare IPv6 address (``::1``, as ``HOST`` takes it and ``make serve`` passes it on)
    in the bracketed form a ``Host`` header gives it (``[::1]``); anything else as it is."""
    if ":" not in host or host.startswith("["):
        return host
    try:
        return f"[{ipaddress.IPv6Address(host).compressed}]"
    except ValueError:
        return host  # not an address: refused below with the rest


def parse_rate_limits(value: object, name: str = "RATELIMIT_DEFAULT") -> tuple[RateLimit, ...]:
    text = DEFAULT_RATELIMIT if _blank(value) else str(value)
    accepts = (
        "limits like 2/second;60/minute or 10 per 10 seconds "
        "(count/[n]second|minute|hour|day, ';'-separated)"
    )
    limits = []
    for part in text.split(";"):
        match = _RATE_RE.match(part.lower())
        if not match:
            raise ConfigError(name, accepts, value)
        count, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
        if count < 1 or multiple < 1:
            raise ConfigError(name, accepts + "; each count at least 1", value)
        limits.append(RateLimit(count, multiple * RATE_PERIODS[unit]))
    return tuple(limits)


def parse_store_error_policy(value: object) -> StoreErrorPolicy:
    if _blank(value):
        return "open"
    text = str(value).strip().lower()
    if text not in ("open", "closed"):
        raise ConfigError("RATELIMIT_ON_STORE_ERROR", "open or closed", value)
    return cast(StoreErrorPolicy, text)


MAX_WORKERS = 256  # a typo guard: far more processes than any one host has cores


def parse_workers(value: object) -> int:
    """``WEB_CONCURRENCY``: worker processes for ``serve`` and ``check``; blank means one per core.

    Read by the commands that start or audit workers, never by the app itself.
    """
    return parse_int(value, "WEB_CONCURRENCY", usable_cores(), 1, MAX_WORKERS)


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: its CPU set (``taskset``, ``--cpuset-cpus``), capped
    by its cgroup's CPU quota (``docker --cpus``, a Kubernetes CPU limit), rounded up.
    ``os.cpu_count()`` gives the host's count: 64 on a node whose pod may use 2, and 64
    workers would share those 2 (the JDK and Go read the quota the same way)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0)) or 1
    else:  # pragma: no cover - macOS and Windows have no CPU sets
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def cgroup_cpu_quota(root: Path) -> float | None:
    """The CPUs a cgroup's quota allows (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or
    ``None`` when there is no quota or no cgroup file to read."""
    try:
        quota, period = (root / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def parse_host(value: object) -> str:
    if _blank(value):
        return "127.0.0.1"
    text = str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", text):
        raise ConfigError("HOST", "an IP address or host name to bind", value)
    return text
