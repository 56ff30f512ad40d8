"""Every SHIPSHAPE_* setting is checked at start-up, and the docs list exactly these."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import MetaData

from shipshape import ConfigError, database
from shipshape.csp import HTML_POLICY
from shipshape.database import Database
from shipshape.extension import ALL_OPTIONS
from shipshape.options import Derived, Option, apply, flag, is_int, markdown_table
from tests.shipshape.conftest import MakeApp

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

#: For every key, values it must refuse: wrong types, out-of-range numbers,
#: unknown names, paths that are not paths, header values with line breaks.
BAD: dict[str, list[Any]] = {
    "SHIPSHAPE_ERROR_PAGES": ["yes", 1],
    "SHIPSHAPE_CSRF": ["false", 0],
    "SHIPSHAPE_HEALTH": [None],
    "SHIPSHAPE_ASSETS": ["on"],
    "SHIPSHAPE_STATIC": [1],
    "SHIPSHAPE_COMPRESSION": ["False"],
    "SHIPSHAPE_REQUEST_LOG": [None],
    "SHIPSHAPE_CONFIGURE_LOGGING": ["no"],
    "SHIPSHAPE_HEADERS": [0],
    "SHIPSHAPE_CSP_REPORTS": ["x"],
    "SHIPSHAPE_HOST_CHECK": [[]],
    "SHIPSHAPE_RATELIMIT": ["off"],
    "SHIPSHAPE_RATELIMIT_DEFAULT_SCOPE": ["global", None, "Client"],
    "SHIPSHAPE_RATELIMIT_LEGACY_HEADERS": ["yes"],
    "SHIPSHAPE_RATELIMIT_STORE_TIMEOUT": [0, 10, "0.05"],
    "MAX_CONTENT_LENGTH": [0, -1, "1MB", 1.5, None],
    "SHIPSHAPE_ERROR_TEMPLATE": ["", 3],
    "SHIPSHAPE_API_PREFIX": ["api/", "/api", "//evil/", 7],
    "SHIPSHAPE_CSRF_FIELD": ["", "csrf token", "x\r\ny"],
    "SHIPSHAPE_CSRF_HEADER": ["X-CSRF:Token", None],
    "SHIPSHAPE_HEALTH_PATH": ["healthz", "/health z", "https://x/", ""],
    "SHIPSHAPE_READY_PATH": [None, "/ready?x=1"],
    "SHIPSHAPE_READY_TIMEOUT": [0, -1, 61, "1", True],
    "SHIPSHAPE_DB_MIGRATE": ["yes", 1, None],
    "SHIPSHAPE_DB_TIMEOUT": [0, -1, 61, "5", True],
    "SHIPSHAPE_DB_POOL_SIZE": [0, 101, "5", 2.5, True],
    "SHIPSHAPE_ASSET_BUNDLES": [["app.css"], 3],
    "SHIPSHAPE_ASSET_ROOT": [None, "", 3],
    "SHIPSHAPE_ASSET_DIR": [None, ""],
    "SHIPSHAPE_STATIC_URL": ["static", "/static", "/sta tic/"],
    "SHIPSHAPE_ASSET_CDN": ["true"],
    "SHIPSHAPE_ASSET_AUTOBUILD": [1],
    "SHIPSHAPE_CSP_HTML": ["default-src 'self'", {"default-src": ["'none'"]}],
    "SHIPSHAPE_CSP_SPA": ["x"],
    "SHIPSHAPE_CSP_API": [3],
    "SHIPSHAPE_CSP_REPORT_ONLY": ["yes"],
    "SHIPSHAPE_CSP_REPORT_PATH": ["csp-report", 5],
    "SHIPSHAPE_COOP": ["same-origin\r\nSet-Cookie: x=1", "same_origin"],
    "SHIPSHAPE_COEP": ["require_corp", "", True],
    "SHIPSHAPE_CORP": ["same-host"],
    "SHIPSHAPE_REFERRER_POLICY": ["never"],
    "SHIPSHAPE_FRAME_OPTIONS": ["ALLOW-FROM https://x", "sameorigin"],
    "SHIPSHAPE_PERMISSIONS_POLICY": ["camera=()\nx", "", 3],
    "SHIPSHAPE_XSS_PROTECTION": [0, "2"],
    "SHIPSHAPE_HSTS": ["on"],
    "SHIPSHAPE_HSTS_MAX_AGE": [-1, "63072000", 1.5],
    "SHIPSHAPE_HSTS_INCLUDE_SUBDOMAINS": [None],
    "SHIPSHAPE_HSTS_PRELOAD": ["yes"],
    "SHIPSHAPE_CSP_REPORT_LIMIT": ["lots", "0/second", 20],
    "SHIPSHAPE_FORCE_HTTPS": ["true"],
    "SHIPSHAPE_HTTPS_EXEMPT_HOSTS": [["local host"], 3],
    "SHIPSHAPE_HTTPS_EXEMPT_PATHS": [["healthz"], 3],
    "SHIPSHAPE_HOST_CHECK_EXEMPT_PATHS": [["healthz"], 3, "/a b"],
    "SHIPSHAPE_TRUSTED_PROXY_NETWORKS": [["10.0.0.0/33"], ["proxy.local"], 3],
    "SHIPSHAPE_SPA_DIR": [3, ["frontend/dist"]],
    "SHIPSHAPE_SPA_MOUNT": ["app", "/app/../x", "//evil", "/a pp", 3],
    "SHIPSHAPE_SPA_ASSETS": ["../assets", "", "/assets", None],
    "SHIPSHAPE_SPA_BUILD_COMMAND": ["", " ", 3],
    "SHIPSHAPE_GC_TUNING": ["on", 1],
    "SHIPSHAPE_COMPRESSION_MIN_SIZE": [-1, "500"],
    "SHIPSHAPE_COMPRESSION_LEVELS": [
        {"br": 99},
        {"gzip": 0},
        {"zstd": 23},
        {"lzma": 5},
        {"br": "4"},
        "br=4",
    ],
}


DATABASE_KEYS = {option.key for option in database.OPTIONS}


def test_every_setting_has_bad_values_in_the_table() -> None:
    keys = [option.key for option in ALL_OPTIONS]
    assert len(keys) == len(set(keys)), "each key has one home"
    assert set(BAD) == set(keys)


@pytest.mark.parametrize(
    ("key", "value"), [(key, value) for key, values in BAD.items() for value in values]
)
def test_a_bad_value_stops_start_up_with_one_line(
    make_app: MakeApp, key: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        if key in DATABASE_KEYS:  # applied by Database(app), not by Shipshape(app)
            app = make_app()
            app.config[key] = value
            Database(app, metadata=MetaData(), migrations=Path("."))
        else:
            make_app(**{key: value})
    message = str(caught.value)
    assert message.startswith(f"{key}: expected ")
    assert "\n" not in message and "`" not in message
    assert caught.value.name == key


def test_defaults_pass_their_own_checks_and_good_values_are_kept(make_app: MakeApp) -> None:
    app = make_app(
        SHIPSHAPE_COMPRESSION_LEVELS={"br": 5},
        SHIPSHAPE_TRUSTED_PROXY_NETWORKS="10.0.0.0/8, ::1",
        SHIPSHAPE_HTTPS_EXEMPT_HOSTS=["LocalHost"],
        SHIPSHAPE_READY_TIMEOUT=2,
        SHIPSHAPE_CSP_REPORT_PATH=None,
        SHIPSHAPE_COEP=None,
        SHIPSHAPE_CSP_HTML=HTML_POLICY.extend(img_src=["https://img.example"]),
    )
    config = app.config
    assert config["SHIPSHAPE_COMPRESSION_LEVELS"] == {"zstd": 3, "br": 5, "gzip": 6, "deflate": 6}
    assert config["SHIPSHAPE_TRUSTED_PROXY_NETWORKS"] == ("10.0.0.0/8", "::1")
    assert config["SHIPSHAPE_HTTPS_EXEMPT_HOSTS"] == ("localhost",)
    assert config["SHIPSHAPE_READY_TIMEOUT"] == 2.0
    assert config["SHIPSHAPE_CSP_REPORT_PATH"] is None
    assert config["MAX_CONTENT_LENGTH"] == 1024 * 1024, "Quart's 16 MiB is replaced"
    assert config["SHIPSHAPE_HSTS"] is False and config["SHIPSHAPE_FORCE_HTTPS"] is False
    production = make_app(APP_ENV="production", SECRET_KEY="k" * 40, ALLOWED_HOSTS="a.example")
    assert production.config["SHIPSHAPE_HSTS"] is True
    assert production.config["SHIPSHAPE_FORCE_HTTPS"] is True


def test_apply_fills_defaults_in_order_and_keeps_the_apps_values() -> None:
    app = Quart(__name__)
    app.config["B"] = 7
    options = (
        Option("A", 2, "a number", "a", is_int(0)),
        Option("B", 3, "a number", "b", is_int(0)),
        Option("C", Derived(lambda app: app.config["A"] * 10, "ten A"), "a number", "c", is_int(0)),
        flag("D", True, "d"),
    )
    apply(app, options)
    assert [app.config[k] for k in "ABCD"] == [2, 7, 20, True]


def test_the_docs_table_is_the_options_table() -> None:
    """docs/configuration.md is rendered from the same tables: it cannot drift from the code."""
    table = markdown_table(ALL_OPTIONS)
    assert table in DOCS.read_text(encoding="utf-8"), (
        "docs/configuration.md is out of date: paste in the output of "
        "`python -m shipshape.options_table`"
    )


def test_the_command_prints_the_table_and_nothing_else() -> None:
    # `python -m shipshape.options` warned that the package had imported it already.
    command = [sys.executable, "-m", "shipshape.options_table"]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    assert run.stdout == markdown_table(ALL_OPTIONS) and run.stderr == ""


def test_check_deploy_names_only_registered_settings() -> None:
    """check --deploy reads the values these tables checked; every key it names has a row."""
    import re

    import shipshape.check

    source = Path(shipshape.check.__file__).read_text(encoding="utf-8")
    named = set(re.findall(r"SHIPSHAPE_[A-Z_]+", source))
    assert named, "the check reads settings"
    assert named <= {option.key for option in ALL_OPTIONS}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("SHIPSHAPE_CSFR", "did you mean SHIPSHAPE_CSRF?"),
        ("SHIPSHAPE_HSTS_MAXAGE", "did you mean SHIPSHAPE_HSTS_MAX_AGE?"),
        ("SHIPSHAPE_RATE_LIMIT", "did you mean SHIPSHAPE_RATELIMIT?"),
        ("SHIPSHAPE_NOTHING_LIKE_ANY_OTHER", "docs/configuration.md"),
        ("SHIPSHAPE_", "docs/configuration.md"),
    ],
)
def test_an_unknown_key_stops_start_up_naming_the_nearest(
    make_app: MakeApp, key: str, message: str
) -> None:
    """A misspelt key would leave its feature on the default without a word: refused."""
    with pytest.raises(ConfigError) as caught:
        make_app(**{key: False})
    text = str(caught.value)
    assert text.startswith(f"{key}: expected a setting listed in docs/configuration.md")
    assert text.endswith(message)
    assert "did you mean" not in text or message.startswith("did you mean")
    assert caught.value.name == key


def test_keys_outside_the_namespace_are_left_alone(make_app: MakeApp) -> None:
    """Only the SHIPSHAPE_ namespace is Shipshape's: an app's own keys are its business."""
    app = make_app(MY_APP_SETTING=1, shipshape_lower="not ours", SHIPSHAPE_CSRF=True)
    assert app.config["MY_APP_SETTING"] == 1
