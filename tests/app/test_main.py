"""``python -m app`` and the make targets around it, as a user meets them, in real processes."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shipshape.config import parse_workers, usable_cores
from tests.conftest import SECRET
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
# Settings under which serve would start and check would pass, apart from the workers.
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "localhost"}


@pytest.fixture(autouse=True)
def no_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child processes inherit os.environ; a developer's WEB_CONCURRENCY must not leak in."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        (
            "serve",
            {"SECRET_KEY": SECRET, "ALLOWED_HOSTS": "localhost", "SERVER_HEADER_TIMEOUT": "0"},
            "error: SERVER_HEADER_TIMEOUT: expected a number of seconds from 0.1 to 60, got '0'",
        ),
        (
            "serve",
            {"SECRET_KEY": SECRET, "ALLOWED_HOSTS": "localhost", "SERVER_MAX_HEADER_BYTES": "1k"},
            "error: SERVER_MAX_HEADER_BYTES: expected an integer from 8192 to 24576, got '1k'",
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


def test_check_deploy_passes_a_good_production_config(
    sqlite_url: str, redis_server: RedisServer
) -> None:
    # One worker: with more and no store, W006 warns that in-memory limits multiply.
    result = run_app(
        "check",
        "--deploy",
        "--workers",
        "1",
        APP_ENV="production",
        SECRET_KEY="9f2c" * 16,
        ALLOWED_HOSTS="example.com",
        REDIS_URL=redis_server.url,  # reached: --deploy pings it
        DATABASE_URL=sqlite_url,  # migrated
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


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "257"])
def test_serve_refuses_a_bad_web_concurrency_in_one_line(value: str) -> None:
    # PORT is free, so a regression that starts the server fails on the timeout.
    result = run_app("serve", **PRODUCTION, PORT=str(free_port()), WEB_CONCURRENCY=value)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: WEB_CONCURRENCY: expected an integer from 1 to 256, got {value!r}"
    ]


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_check_reports_a_bad_web_concurrency_as_a_finding(value: str) -> None:
    result = run_app("check", "--deploy", **PRODUCTION, WEB_CONCURRENCY=value)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "ERROR   shipshape.E000  WEB_CONCURRENCY: expected an integer from 1 to 256, "
        f"got {value!r}",
        "        fix: set WEB_CONCURRENCY as the README says",
        "1 error(s), 0 warning(s)",
    ]
    assert "Traceback" not in result.stderr


def test_check_counts_the_workers_from_web_concurrency() -> None:
    result = run_app("check", "--deploy", **PRODUCTION, WEB_CONCURRENCY="3")
    assert result.returncode == 0, result.stdout
    assert "rate limits are kept in memory with 3 workers" in result.stdout


@pytest.mark.parametrize("command", ["serve", "check"])
@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_a_bad_workers_flag_is_refused_by_argparse(command: str, value: str) -> None:
    result = run_app(command, "--workers", value, **PRODUCTION, PORT=str(free_port()))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"python -m app {command}: error: argument --workers: "
        f"expected an integer from 1 to 256, got {value!r}"
    )


def test_the_default_workers_are_the_cores_the_process_may_use() -> None:
    """One worker per usable core: a CPU set (a container's, taskset's) counts, not the host's
    cores; on one allowed core there is one worker, so no per-worker memory warning."""
    assert parse_workers(None) == usable_cores()  # tests/shipshape/test_config.py tests it
    environ = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "SECRET_KEY")}
    result = subprocess.run(
        ["taskset", "-c", str(min(os.sched_getaffinity(0))), sys.executable, "-m", "app",
         "check", "--deploy"],
        cwd=ROOT, env={**environ, **PRODUCTION}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "workers" not in result.stdout, "one worker: nothing is multiplied"


def test_the_workers_flag_wins_over_a_bad_web_concurrency() -> None:
    result = run_app("check", "--workers", "2", **PRODUCTION, WEB_CONCURRENCY="abc")
    assert "with 2 workers" in result.stdout, result.stdout
    assert "WEB_CONCURRENCY" not in result.stdout


def run_make(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_help_lists_every_command_a_user_runs() -> None:
    result = run_make()
    assert result.returncode == 0, result.stderr
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("make ")}
    assert listed == {
        "setup", "run", "test", "serve", "check", "db-upgrade", "assets", "frontend",
        "frontend-dev", "fuzz", "bench", "observatory", "clean",
    }  # fmt: skip


def test_make_clean_removes_what_the_tools_leave_behind(tmp_path: Path) -> None:
    left_behind = [
        ".venv/bin",
        "node_modules/bootstrap",
        "src/app/static/dist",
        "frontend/node_modules/vite",
        "frontend/dist/assets",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis/examples",
        "src/shipshape.egg-info",
        "other.egg-info",
    ]
    kept = ["src/app/static/src", "src/shipshape", "frontend/src", "instance", ".git/refs"]
    for folder in left_behind + kept:
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / ".coverage").write_text("")
    result = run_make("clean", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    remaining = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")}
    assert remaining == {
        "src",
        "src/app",
        "src/app/static",
        "src/app/static/src",
        "src/shipshape",
        "frontend",
        "frontend/src",
        "instance",
        ".git",
        ".git/refs",
    }


def test_make_serve_and_check_run_every_step_in_serves_environment(tmp_path: Path) -> None:
    """Regression: with ``APP_ENV=production`` exported and no ``ALLOWED_HOSTS``,
    ``make serve`` stopped at its migration step, which ran in the shell's environment
    without serve's host fallback, and ``make check`` refused what serve would run."""
    environ = {k: v for k, v in os.environ.items() if k not in ("ALLOWED_HOSTS", "APP_ENV")}
    environ.update(
        APP_ENV="production",
        SECRET_KEY=SECRET,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        HOST="127.0.0.1",
        WEB_CONCURRENCY="1",
    )
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "serve", "check"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    steps = [
        line
        for line in dry.stdout.splitlines()
        if line.endswith(("db upgrade", "-m app serve", "-m app check --deploy"))
    ]
    assert len(steps) == 3, dry.stdout
    for line in steps:
        assert line.startswith('APP_ENV=production ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,'), (
            line
        )
    migrate, _, check = steps
    for step in (migrate, check):  # as make runs them (serve itself would not return)
        done = subprocess.run(
            ["bash", "-c", step],
            cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ALLOWED_HOSTS" not in done.stdout
    assert (tmp_path / "app.db").exists()


def _script(name: str) -> Any:
    """``scripts/<name>.py``, loaded as a module (scripts/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frontend_dev_starts_vite_only_for_an_app_that_answers() -> None:
    """Regression (newcomer run): with a bad setting or a busy port the app died and Vite
    ran on, proxying to nothing."""
    wait = _script("wait_for_app")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        app = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert wait.main(app.pid, "127.0.0.1", port) == 0  # it answers and runs on
        finally:
            app.kill()
            app.wait()
        # An app that exited (a zombie until its parent reaps it) while a port answers:
        # the busy-port case, where another server holds the port.
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        stat = Path(f"/proc/{gone.pid}/stat")
        for _ in range(500):  # until it has exited, unreaped
            if stat.read_text().rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.01)
        assert wait.main(gone.pid, "127.0.0.1", port) == 1
        gone.wait()
        # Before the app starts: a port that answers already is another server's.
        assert wait.free("127.0.0.1", port) == 1
    assert wait.free("127.0.0.1", port) == 0


def test_a_built_file_deleted_by_hand_makes_the_build_stale(tmp_path: Path) -> None:
    """Regression (newcomer run): make compared times only, so with a built file deleted
    ``make assets`` and ``make frontend`` did nothing, and start-up said to run them."""
    script = _script("build_gone")
    script.ASSET_DIR, script.FRONTEND_DIR = tmp_path / "static", tmp_path / "frontend"
    assert not script.gone("assets") and not script.gone("frontend")  # no build yet
    script.ASSET_DIR.mkdir()
    (script.ASSET_DIR / "manifest.json").write_text(
        '{"site.css": {"path": "site-1.min.css", "encodings": {"br": 9}}}'
    )
    (script.ASSET_DIR / "site-1.min.css").write_text("a{}")
    assert script.gone("assets")  # its .br sibling is missing
    (script.ASSET_DIR / "site-1.min.css.br").write_bytes(b"x")
    assert not script.gone("assets")
    (script.FRONTEND_DIR / "assets").mkdir(parents=True)
    (script.FRONTEND_DIR / "index.html").write_text("<!doctype html>")
    assert script.gone("frontend")  # a build with no list of its files yet: once
    (script.FRONTEND_DIR / ".files").write_text("./index.html\n./assets/list-A.js\n")
    assert script.gone("frontend")  # a lazy chunk, which index.html does not link
    (script.FRONTEND_DIR / "assets" / "list-A.js").write_text("")
    assert not script.gone("frontend")
    # Regression (SPA probe): an index overwritten by hand was refused at start-up, and
    # `make frontend` had nothing to do. The list now holds each file's SHA-256.
    index = script.FRONTEND_DIR / "index.html"
    built = script.FRONTEND_DIR
    listed = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  ./{path.relative_to(built)}"
        for path in (index, built / "assets" / "list-A.js")
    ]
    (script.FRONTEND_DIR / ".files").write_text("\n".join(listed) + "\n")
    assert not script.gone("frontend")
    index.write_text("garbage")
    assert script.gone("frontend")
