from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from quart import Quart, session

from shipshape import Shipshape
from shipshape.config import (
    DEFAULT_DATABASE_URL,
    ConfigError,
    RateLimit,
    ServerLimits,
    Settings,
    cgroup_cpu_quota,
    environ_config,
    usable_cores,
)

KEY = "k" * 32


def test_defaults_in_development() -> None:
    settings = Settings.from_mapping({})
    assert settings.app_env == "development"
    assert settings.secret_key_generated
    assert len(settings.secret_key) == 64
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url is None
    assert settings.trusted_proxies == 0
    assert settings.allowed_hosts == ("127.0.0.1", "localhost")
    assert settings.ratelimit_default == (RateLimit(2, 1), RateLimit(60, 60))
    assert settings.ratelimit_on_store_error == "open"
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)
    assert settings.server == ServerLimits(
        max_header_bytes=16384, header_timeout=10.0, max_connections=1000
    )
    assert settings.is_development and not settings.is_production


def test_generated_secret_differs_per_settings_object() -> None:
    assert Settings.from_mapping({}).secret_key != Settings.from_mapping({}).secret_key


def test_production_with_everything_set() -> None:
    settings = Settings.from_mapping(
        {
            "APP_ENV": "Production",
            "SECRET_KEY": KEY,
            "DATABASE_URL": "postgresql+asyncpg://u:p@db:5432/app",
            "REDIS_URL": "valkey://cache:6379/2",
            "TRUSTED_PROXIES": "1",
            "ALLOWED_HOSTS": "Example.com, .example.org",
            "RATELIMIT_DEFAULT": "10/second; 100 per 5 minutes",
            "RATELIMIT_ON_STORE_ERROR": "closed",
            "HOST": "0.0.0.0",  # noqa: S104 - a bind address, not a listen call
            "PORT": 8080,
            "SERVER_MAX_HEADER_BYTES": "+8192",
            "SERVER_HEADER_TIMEOUT": " 2.5 ",
            "SERVER_MAX_CONNECTIONS": 64,
        }
    )
    assert settings.server == ServerLimits(8192, 2.5, 64)
    assert settings.is_production and not settings.secret_key_generated
    assert settings.allowed_hosts == ("example.com", ".example.org")
    assert settings.ratelimit_default == (RateLimit(10, 1), RateLimit(100, 300))
    assert str(settings.ratelimit_default[1]) == "100/300s"
    assert settings.ratelimit_on_store_error == "closed"
    assert settings.port == 8080
    assert settings.trusted_proxies == 1


def test_settings_are_frozen() -> None:
    settings = Settings.from_mapping({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "name", "fragment"),
    [
        ({"APP_ENV": "staging"}, "APP_ENV", "development, testing, production"),
        ({"PORT": "abc"}, "PORT", "integer from 1 to 65535"),
        ({"PORT": "0"}, "PORT", "integer"),
        ({"PORT": "70000"}, "PORT", "integer"),
        ({"PORT": True}, "PORT", "integer"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES", "integer from 0"),
        ({"TRUSTED_PROXIES": "two"}, "TRUSTED_PROXIES", "integer"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL", "redis://"),
        ({"REDIS_URL": "http://cache"}, "REDIS_URL", "redis://"),
        ({"REDIS_URL": "redis://"}, "REDIS_URL", "redis://"),
        ({"REDIS_URL": "redis://cache:port"}, "REDIS_URL", "redis://"),
        ({"REDIS_URL": "redis://cache/zero"}, "REDIS_URL", "numeric /db"),
        ({"REDIS_URL": "unix://"}, "REDIS_URL", "unix://"),
        ({"DATABASE_URL": "mysql://db/app"}, "DATABASE_URL", "postgresql+asyncpg"),
        ({"DATABASE_URL": "postgresql+asyncpg://"}, "DATABASE_URL", "postgresql"),
        ({"DATABASE_URL": "postgresql+asyncpg://db:99999/x"}, "DATABASE_URL", "postgresql"),
        (
            {"DATABASE_URL": "postgresql+asyncpg://db/x?connect_timeout=5"},
            "DATABASE_URL",
            "'connect_timeout' is not one",
        ),
        ({"DATABASE_URL": "postgresql+asyncpg://u@/x?port=5432"}, "DATABASE_URL", "postgresql"),
        ({"DATABASE_URL": "sqlite+aiosqlite://host/x.db"}, "DATABASE_URL", "sqlite"),
        ({"DATABASE_URL": "sqlite+aiosqlite:"}, "DATABASE_URL", "sqlite"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL", "sqlite"),
        ({"APP_ENV": "production"}, "SECRET_KEY", "at least 32 bytes in production"),
        ({"APP_ENV": "production", "SECRET_KEY": "short"}, "SECRET_KEY", "at least 32 bytes"),
        ({"SECRET_KEY": "x" * 31}, "SECRET_KEY", "at least 32 bytes"),
        ({"SECRET_KEY": 12345}, "SECRET_KEY", "at least 32 bytes"),
        ({"APP_ENV": "production", "SECRET_KEY": KEY}, "ALLOWED_HOSTS", "in production"),
        ({"ALLOWED_HOSTS": "exa mple.com"}, "ALLOWED_HOSTS", "host names"),
        ({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS", "host names"),
        ({"ALLOWED_HOSTS": "http://example.com"}, "ALLOWED_HOSTS", "host names"),
        ({"RATELIMIT_DEFAULT": "2/fortnight"}, "RATELIMIT_DEFAULT", "or 10 per 10 seconds"),
        ({"RATELIMIT_DEFAULT": "0/second"}, "RATELIMIT_DEFAULT", "each count at least 1"),
        ({"RATELIMIT_DEFAULT": "2/0 seconds"}, "RATELIMIT_DEFAULT", "each count at least 1"),
        # Regression (rate-limit probe): a full-width digit was read as 1.
        ({"RATELIMIT_DEFAULT": "\uff11/day"}, "RATELIMIT_DEFAULT", "count/"),
        ({"RATELIMIT_DEFAULT": "2/\u0661 seconds"}, "RATELIMIT_DEFAULT", "count/"),
        ({"RATELIMIT_DEFAULT": "5/0 minutes"}, "RATELIMIT_DEFAULT", "count/"),
        ({"RATELIMIT_DEFAULT": "2/second;"}, "RATELIMIT_DEFAULT", "count/"),
        ({"RATELIMIT_ON_STORE_ERROR": "maybe"}, "RATELIMIT_ON_STORE_ERROR", "open or closed"),
        ({"HOST": "bad host!"}, "HOST", "IP address or host name"),
        ({"SERVER_MAX_HEADER_BYTES": "8191"}, "SERVER_MAX_HEADER_BYTES", "from 8192 to 24576"),
        ({"SERVER_MAX_HEADER_BYTES": "24577"}, "SERVER_MAX_HEADER_BYTES", "from 8192 to 24576"),
        ({"SERVER_MAX_HEADER_BYTES": "16k"}, "SERVER_MAX_HEADER_BYTES", "integer"),
        ({"SERVER_MAX_HEADER_BYTES": "16_384"}, "SERVER_MAX_HEADER_BYTES", "integer"),
        ({"SERVER_MAX_HEADER_BYTES": "１６３８４"}, "SERVER_MAX_HEADER_BYTES", "integer"),
        ({"SERVER_MAX_HEADER_BYTES": 2**20 + 1}, "SERVER_MAX_HEADER_BYTES", "integer"),
        ({"SERVER_HEADER_TIMEOUT": "0"}, "SERVER_HEADER_TIMEOUT", "seconds from 0.1 to 60"),
        ({"SERVER_HEADER_TIMEOUT": "61"}, "SERVER_HEADER_TIMEOUT", "seconds"),
        ({"SERVER_HEADER_TIMEOUT": "10s"}, "SERVER_HEADER_TIMEOUT", "seconds"),
        ({"SERVER_HEADER_TIMEOUT": "nan"}, "SERVER_HEADER_TIMEOUT", "seconds"),
        ({"SERVER_HEADER_TIMEOUT": "1_0"}, "SERVER_HEADER_TIMEOUT", "seconds"),
        ({"SERVER_HEADER_TIMEOUT": "1e1"}, "SERVER_HEADER_TIMEOUT", "seconds"),
        ({"SERVER_HEADER_TIMEOUT": True}, "SERVER_HEADER_TIMEOUT", "seconds"),
        ({"SERVER_MAX_CONNECTIONS": "0"}, "SERVER_MAX_CONNECTIONS", "from 1 to 65535"),
        ({"SERVER_MAX_CONNECTIONS": "lots"}, "SERVER_MAX_CONNECTIONS", "integer"),
    ],
)
def test_bad_values_fail_with_one_line(values: dict[str, Any], name: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping(values)
    message = str(info.value)
    assert info.value.name == name
    assert message.startswith(f"{name}: expected ")
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize("key", ["hunter2-but-longer", b"hunter2-but-longer"])
def test_secret_value_is_never_printed(key: str | bytes) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping({"SECRET_KEY": key})
    assert "hunter2" not in str(info.value)
    assert "<18 bytes>" in str(info.value)


async def test_a_key_of_bytes_is_a_key_as_quart_takes_it() -> None:
    """Regression (library user's probe): ``b"x" * 40`` was refused as too short, and
    printed whole in the refusal."""
    key = bytes(range(40))
    assert Settings.from_mapping({"SECRET_KEY": key}).secret_key == key
    app = Quart(__name__)
    app.config.update(SECRET_KEY=key, SHIPSHAPE_ASSETS=False)
    Shipshape(app)

    @app.get("/")
    async def visit() -> str:
        session["seen"] = True
        return "ok"

    async with app.test_app():
        response = await app.test_client().get("/")
    assert response.status_code == 200 and "session=" in response.headers["Set-Cookie"]


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("DATABASE_URL", "postgresql://user:s3cretpw@db/app", "postgresql://user:***@db/app"),
        ("DATABASE_URL", "mysql://user:s3cre@tpw@db:3306/app", "mysql://user:***@db:3306/app"),
        ("DATABASE_URL", "user:s3cretpw@db/app", "user:***@db/app"),
        ("REDIS_URL", "http://:s3cretpw@redis:6379/0", "http://:***@redis:6379/0"),
        ("REDIS_URL", "redis://cache:s3cretpw@/zero", "redis://cache:***@/zero"),
        # A generated password with a "/", which is what makes the URL unreadable.
        (
            "DATABASE_URL",
            "postgresql+asyncpg://app:Zx9/s3cre+r@db/app",
            "postgresql+asyncpg://app:***@db/app",
        ),
        ("REDIS_URL", "redis://:ab/s3cre@cache:6379/0", "redis://:***@cache:6379/0"),
        # asyncpg takes a password in the query too (review).
        (
            "DATABASE_URL",
            "postgresql+asyncpg://u@db/app?password=s3cretpw&nope=1",
            "postgresql+asyncpg://u@db/app?password=***&nope=1",
        ),
    ],
)
def test_a_urls_password_is_never_printed(name: str, value: str, shown: str) -> None:
    """A bad URL is echoed to say what was read, but its password never is."""
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping({name: value})
    message = str(info.value)
    assert info.value.name == name
    assert "s3cre" not in message
    assert message.endswith(f", got {shown!r}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sqlite+aiosqlite:///instance/app.db", "sqlite+aiosqlite:///instance/app.db"),
        ("sqlite+aiosqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("postgresql+asyncpg://u@localhost/app", "postgresql+asyncpg://u@localhost/app"),
        # Regression (PostgreSQL probe): libpq's sslmode passed the check, then failed at
        # every connection with a TypeError; a unix socket's URL was refused.
        (
            "postgresql+asyncpg://u@db/app?sslmode=require",
            "postgresql+asyncpg://u@db/app?ssl=require",
        ),
        (
            "postgresql+asyncpg://u@db/app?ssl=verify-full",
            "postgresql+asyncpg://u@db/app?ssl=verify-full",
        ),
        (
            "postgresql+asyncpg://u@/app?host=/run/postgresql&port=5442",
            "postgresql+asyncpg://u@/app?host=/run/postgresql&port=5442",
        ),
        # Regression (review): with nothing before the path, the `//` was dropped.
        (
            "postgresql+asyncpg:///app?host=/run/postgresql",
            "postgresql+asyncpg:///app?host=/run/postgresql",
        ),
        ("  ", DEFAULT_DATABASE_URL),
    ],
)
def test_database_urls(value: str, expected: str) -> None:
    assert Settings.from_mapping({"DATABASE_URL": value}).database_url == expected


@pytest.mark.parametrize(
    "value",
    ["redis://localhost:6379/0", "rediss://:pw@cache", "valkey://cache", "unix:///run/redis.sock"],
)
def test_redis_urls(value: str) -> None:
    assert Settings.from_mapping({"REDIS_URL": value}).redis_url == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*", ("*",)),
        (["a.example", "[::1]"], ("a.example", "[::1]")),
        ("localhost,127.0.0.1", ("localhost", "127.0.0.1")),
        # Regression (newcomer run): HOST=::1 make serve passed "::1,localhost" and was refused.
        ("::1,localhost", ("[::1]", "localhost")),
        ("::,0:0:0:0:0:0:0:1", ("[::]", "[::1]")),
    ],
)
def test_allowed_hosts(value: object, expected: tuple[str, ...]) -> None:
    assert Settings.from_mapping({"ALLOWED_HOSTS": value}).allowed_hosts == expected


def test_environ_config_copies_only_set_table_names() -> None:
    environ = {"APP_ENV": "testing", "PORT": "", "HOME": "/root", "REDIS_URL": "redis://x"}
    assert environ_config(environ) == {"APP_ENV": "testing", "REDIS_URL": "redis://x"}


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),  # cgroup v2: --cpus=2
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),  # no quota
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_the_cgroup_cpu_quota_is_read(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_usable_cores_are_the_cpu_set_capped_by_the_quota(tmp_path: Path) -> None:
    """A pod limited to 1.5 CPUs gets 2 workers, not one per core of the node."""
    cpu_set = len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path) == cpu_set  # no quota
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert usable_cores(tmp_path) == min(cpu_set, 2)
    (tmp_path / "cpu.max").write_text("10000 100000\n")  # a tenth of a CPU: still one worker
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{(cpu_set + 8) * 100000} 100000\n")
    assert usable_cores(tmp_path) == cpu_set, "a quota above the CPU set changes nothing"
