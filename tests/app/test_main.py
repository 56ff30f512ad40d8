"""``python -m app``: start-up validation as a user meets it, in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]


def run_app(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_module("app", *args, **env)


def run_module(module: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "SECRET_KEY")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("command", "env", "message"),
    [
        ("serve", {}, "error: SECRET_KEY: expected a random secret of at least 32 bytes"),
        ("serve", {"SECRET_KEY": "short"}, "error: SECRET_KEY: expected at least 32 bytes"),
        ("run", {"APP_ENV": "staging"}, "error: APP_ENV: expected one of development, testing"),
        ("run", {"PORT": "abc"}, "error: PORT: expected an integer from 1 to 65535, got 'abc'"),
        ("run", {"REDIS_URL": "localhost:6379"}, "error: REDIS_URL: expected a redis://"),
        ("run", {"DATABASE_URL": "mysql://x/y"}, "error: DATABASE_URL: expected a sqlite"),
        (
            "serve",
            {"SECRET_KEY": SECRET, "ALLOWED_HOSTS": ""},
            "error: ALLOWED_HOSTS: expected a comma-separated list",
        ),
    ],
)
def test_bad_settings_print_one_line_and_exit_2(
    command: str, env: dict[str, str], message: str
) -> None:
    result = run_app(command, **env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)
    assert "Traceback" not in result.stderr


def test_check_deploy_passes_a_good_production_config() -> None:
    result = run_app(
        "check",
        "--deploy",
        "--workers",
        "2",
        APP_ENV="production",
        SECRET_KEY="9f2c" * 16,
        ALLOWED_HOSTS="example.com",
        REDIS_URL="redis://cache:6379/0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout


def test_check_reports_a_bad_setting_as_a_finding() -> None:
    result = run_app("check", "--deploy", APP_ENV="production", SECRET_KEY="9f2c" * 16)
    assert result.returncode == 1
    assert result.stdout.startswith("ERROR   shipshape.E000  ALLOWED_HOSTS: expected")
    assert "Traceback" not in result.stderr


def test_check_deploy_fails_in_development() -> None:
    result = run_app("check", "--deploy")
    assert result.returncode == 1
    assert "shipshape.E001" in result.stdout and "shipshape.W003" in result.stdout


@pytest.mark.parametrize("command", [["check", "--deploy"], ["routes"], ["assets", "build"]])
def test_quarts_own_cli_prints_a_bad_setting_without_a_traceback(command: list[str]) -> None:
    result = run_module("quart", "--app", "app", *command, APP_ENV="production", SECRET_KEY="x")
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: SECRET_KEY: expected at least 32 bytes, got '<1 byte>'"
    assert "Traceback" not in result.stderr
