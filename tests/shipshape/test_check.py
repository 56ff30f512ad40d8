from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from shipshape import ConfigError
from shipshape.bundling import AssetError
from shipshape.check import config_error_finding, run_checks, secret_entropy_bits
from shipshape.csp import API_POLICY, HTML_POLICY
from tests.servers import RedisServer
from tests.shipshape.conftest import MakeApp

STRONG = "3f9c2a7d1e8b4c6a0f5d9e2b7a1c4d8e6f0a3b5c7d9e1f2a4b6c8d0e2f4a6b8c"
PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": STRONG,
    "ALLOWED_HOSTS": "example.com",
    "REDIS_URL": "",  # a live server's, below: --deploy reaches the store
}


@pytest.fixture(autouse=True)
def live_store(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> None:
    monkeypatch.setitem(PRODUCTION, "REDIS_URL", redis_server.url)


def ids(make_app: MakeApp, workers: int = 1, deploy: bool = True, **config: Any) -> set[str]:
    app = make_app(SHIPSHAPE_ASSETS=False, **{**PRODUCTION, **config})
    settings = app.extensions["shipshape"].settings
    return {f.id for f in run_checks(app, settings, deploy=deploy, workers=workers)}


def test_a_good_production_config_is_clean(make_app: MakeApp) -> None:
    assert ids(make_app) == set()


@pytest.mark.parametrize(
    ("config", "workers", "expected"),
    [
        (
            {"APP_ENV": "development"},
            1,
            {"shipshape.E001", "shipshape.E002", "shipshape.E008", "shipshape.W010"},
        ),
        (
            {"APP_ENV": "testing", "SECRET_KEY": ""},
            1,
            {"shipshape.E001", "shipshape.W003", "shipshape.E008", "shipshape.W010"},
        ),
        ({"SECRET_KEY": "a" * 40}, 1, {"shipshape.E004"}),
        ({"SECRET_KEY": "correct horse battery staple ok!"}, 1, {"shipshape.E004"}),
        ({"ALLOWED_HOSTS": "*"}, 1, {"shipshape.W005"}),
        # make serve's fallback with HOST=0.0.0.0: only localhost would be served.
        ({"ALLOWED_HOSTS": "0.0.0.0,localhost"}, 1, {"shipshape.W018"}),  # noqa: S104
        ({"ALLOWED_HOSTS": "[::],example.com"}, 1, {"shipshape.W018"}),
        ({"ALLOWED_HOSTS": "::,localhost"}, 1, {"shipshape.W018"}),  # make serve with HOST=::
        ({"REDIS_URL": ""}, 4, {"shipshape.W006"}),
        ({"REDIS_URL": ""}, 1, set()),
        # With REDIS_URL the limits live in Redis, shared by every worker.
        ({}, 4, set()),
        ({"SHIPSHAPE_RATELIMIT": False, "REDIS_URL": ""}, 4, set()),
        ({"TRUSTED_PROXIES": 1, "HOST": "0.0.0.0"}, 1, {"shipshape.W007"}),  # noqa: S104
        ({"TRUSTED_PROXIES": 1, "HOST": "localhost"}, 1, set()),
        ({"TRUSTED_PROXIES": 1, "HOST": "::1"}, 1, set()),
        ({"TRUSTED_PROXIES": 1, "HOST": "app.internal"}, 1, {"shipshape.W007"}),
        ({"TRUSTED_PROXIES": 1, "HOST": "::"}, 1, {"shipshape.W007"}),
        ({"TRUSTED_PROXIES": 1, "HOST": "1.2.3.4"}, 1, {"shipshape.W007"}),  # a public one
        # A private address, as W007's own fix suggests: the proxy's network.
        ({"TRUSTED_PROXIES": 1, "HOST": "10.0.0.5"}, 1, set()),
        ({"TRUSTED_PROXIES": 1, "HOST": "fd00::5"}, 1, set()),
        ({"TRUSTED_PROXIES": 1, "HOST": "::ffff:0.0.0.0"}, 1, {"shipshape.W007"}),
        ({"TRUSTED_PROXIES": 1, "HOST": "::ffff:10.0.0.5"}, 1, set()),
    ],
)
def test_findings(
    make_app: MakeApp, config: dict[str, Any], workers: int, expected: set[str]
) -> None:
    if config.get("APP_ENV") == "development":
        app = make_app(SHIPSHAPE_ASSETS=False, **{**PRODUCTION, **config})
        app.debug = True
        settings = app.extensions["shipshape"].settings
        found = {f.id for f in run_checks(app, settings, deploy=True, workers=workers)}
    else:
        found = ids(make_app, workers=workers, **config)
    assert found == expected


def test_entropy_ranks_keys() -> None:
    assert secret_entropy_bits(STRONG) > 200
    assert secret_entropy_bits("a" * 64) == 0


@pytest.mark.parametrize(
    ("config", "args", "exit_code", "text"),
    [
        ({}, ["--deploy", "--workers", "1"], 0, "0 error(s), 0 warning(s)"),
        ({}, ["--deploy", "--workers", "2"], 0, "0 error(s), 0 warning(s)"),
        ({"SECRET_KEY": "b" * 40}, ["--deploy"], 1, "ERROR   shipshape.E004"),
        ({"REDIS_URL": ""}, ["--workers", "3"], 0, "WARNING shipshape.W006"),
    ],
)
def test_cli(
    make_app: MakeApp, config: dict[str, Any], args: list[str], exit_code: int, text: str
) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False, **{**PRODUCTION, **config})
    result = CliRunner().invoke(app.cli, ["check", *args])
    assert result.exit_code == exit_code, result.output
    assert text in result.output
    if exit_code:
        assert "fix: " in result.output


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"SHIPSHAPE_HSTS": False}, {"shipshape.E008"}),
        ({"SHIPSHAPE_HEADERS": False}, {"shipshape.E008"}),
        (
            {"SHIPSHAPE_CSP_HTML": HTML_POLICY.extend(style_src=["'unsafe-inline'"])},
            {"shipshape.E009"},
        ),
        (
            {"SHIPSHAPE_CSP_API": API_POLICY.extend(script_src=["'unsafe-eval'"])},
            {"shipshape.E009"},
        ),
        ({"SHIPSHAPE_CSP_SPA": None}, set()),
        ({"SHIPSHAPE_CSP_REPORT_ONLY": True}, {"shipshape.W011"}),
        ({"SHIPSHAPE_FORCE_HTTPS": False}, {"shipshape.W010"}),
        ({"SHIPSHAPE_HOST_CHECK": False}, {"shipshape.E012"}),
        ({"SHIPSHAPE_CSRF": False}, {"shipshape.W013"}),
    ],
)
def test_security_findings(make_app: MakeApp, config: dict[str, Any], expected: set[str]) -> None:
    assert ids(make_app, **config) == expected


def test_config_error_finding() -> None:
    finding = config_error_finding(ConfigError("ALLOWED_HOSTS", "a list"))
    assert (finding.id, finding.severity) == ("shipshape.E000", "error")
    assert "ALLOWED_HOSTS: expected a list" in str(finding)
    assert finding.fix == "set ALLOWED_HOSTS as the README says"
    key = config_error_finding(ConfigError("SHIPSHAPE_CSRF", "True or False"))
    assert key.fix == "set SHIPSHAPE_CSRF as docs/configuration.md says"
    size = config_error_finding(ConfigError("MAX_CONTENT_LENGTH", "bytes, 1 or more"))
    assert size.fix == "set MAX_CONTENT_LENGTH as docs/configuration.md says"
    build = config_error_finding(AssetError("the asset manifest is missing: run make assets"))
    assert build.message == "the asset manifest is missing: run make assets"
    assert build.fix == "do what the message says"


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_a_bad_web_concurrency_is_one_line(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", value)
    app = make_app(SHIPSHAPE_ASSETS=False, **PRODUCTION)
    result = CliRunner().invoke(app.cli, ["check"])
    assert result.exit_code == 2
    assert "WEB_CONCURRENCY: expected an integer from 1 to 256" in result.output
    assert "Traceback" not in result.output
