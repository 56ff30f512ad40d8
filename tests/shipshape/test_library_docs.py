"""What the README and docs tell a library user, on an app of the user's own (not the example)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from quart import Quart

from shipshape import Settings, Shipshape, environ_config
from shipshape.config import ENV_NAMES
from tests.conftest import client_of, csrf_from
from tests.shipshape.conftest import UNLIMITED, write_spa_build

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Using Shipshape in your own app"


def readme_example() -> tuple[str, str]:
    """The section's Python factory and its Jinja template, as the README prints them."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    (template,) = re.findall(r"```jinja\n(.*?)```", section, re.DOTALL)
    return code, template


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No env-table variable from the shell that runs the tests."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def myapp(tmp_path: Path, clean_environ: pytest.MonkeyPatch) -> Quart:
    """The README's ``myapp`` package, written out and imported; its factory's app."""
    code, template = readme_example()
    package = tmp_path / "myapp"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text(code, encoding="utf-8")
    (package / "templates" / "index.html").write_text(template, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("myapp", package / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    clean_environ.setitem(sys.modules, "myapp", module)
    spec.loader.exec_module(module)
    clean_environ.setenv("APP_ENV", "testing")
    clean_environ.setenv("RATELIMIT_DEFAULT", UNLIMITED)
    app: Quart = module.create_app()
    return app


async def test_the_readme_example_runs_with_the_production_layer(myapp: Quart) -> None:
    # The environment reached the settings through the factory's environ_config line.
    assert myapp.extensions["shipshape"].settings.app_env == "testing"
    # With no bundles, no manifest is needed: nothing was built, and it starts.
    assert not (Path(myapp.root_path) / "static" / "manifest.json").exists()
    async with myapp.test_app():
        client = client_of(myapp)
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        html = await page.get_data(as_text=True)
        assert 'class="form-control"' in html and "There is a problem" not in html
        token = csrf_from(html)
        invalid = await client.post("/", form={"csrf_token": token, "name": ""})
        assert invalid.status_code == 422
        invalid_html = await invalid.get_data(as_text=True)
        assert "There is a problem" in invalid_html and 'aria-invalid="true"' in invalid_html
        saved = await client.post("/", form={"csrf_token": token, "name": "Kettle"})
        assert saved.status_code == 303
        assert (await client.post("/", form={"name": "Kettle"})).status_code == 400


async def test_assets_build_writes_an_empty_manifest_for_no_bundles(myapp: Quart) -> None:
    result = myapp.test_cli_runner().invoke(args=["assets", "build"])
    assert result.exit_code == 0, result.output
    manifest = Path(myapp.root_path) / "static" / "manifest.json"
    assert json.loads(manifest.read_text()) == {}


def test_shipshape_alone_reads_app_config_not_the_environment(
    clean_environ: pytest.MonkeyPatch,
) -> None:
    clean_environ.setenv("APP_ENV", "production")
    app = Quart(__name__)
    Shipshape(app)
    assert app.extensions["shipshape"].settings.app_env == "development"


def test_environ_config_copies_the_set_table_variables_as_strings() -> None:
    environ = {"APP_ENV": "production", "PORT": " ", "SHIPSHAPE_CSRF": "0", "HOME": "/root"}
    assert environ_config(environ) == {"APP_ENV": "production"}


def test_an_apps_settings_parse_again_from_its_config() -> None:
    """docs/configuration.md: ``Settings.from_mapping(app.config)`` gives an app's settings
    (the secret key kept, ``secret_key_generated`` aside) whichever instance it has."""
    shared = Shipshape()
    first, second = Quart("first"), Quart("second")
    first.config.update(APP_ENV="testing", SHIPSHAPE_ASSETS=False)
    second.config.update(APP_ENV="development", SHIPSHAPE_ASSETS=False)
    shared.init_app(first)
    shared.init_app(second)
    assert first.extensions["shipshape"].settings.app_env == "development"  # the last app's
    again = Settings.from_mapping(first.config)
    assert again.app_env == "testing"
    assert again.secret_key == first.config["SECRET_KEY"]


async def test_a_frontend_at_the_root_answers_unrouted_requests_itself(tmp_path: Path) -> None:
    """docs/spa.md: the app's own 404 and 405 handlers never see a path the layer answers."""
    app = Quart(__name__)
    app.config.update(
        APP_ENV="testing",
        RATELIMIT_DEFAULT=UNLIMITED,
        SHIPSHAPE_ASSETS=False,
        SHIPSHAPE_SPA_DIR=str(write_spa_build(tmp_path / "dist", base="/")),
        SHIPSHAPE_SPA_MOUNT="/",
    )
    Shipshape(app)

    @app.errorhandler(404)
    @app.errorhandler(405)
    async def own_error(error: Exception) -> tuple[str, int]:
        return "the app's own page", getattr(error, "code", 500)

    @app.get("/hello")
    async def hello() -> str:
        return "hello"

    async with app.test_app():
        client = client_of(app)
        missing = await client.get("/nope", headers={"Sec-Fetch-Dest": "empty"})
        assert missing.status_code == 404
        assert "the app's own page" not in await missing.get_data(as_text=True)
        posted = await client.post("/nope")
        assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
        assert "the app's own page" not in await posted.get_data(as_text=True)
        api = await client.get("/api/nope")
        assert (api.status_code, await api.get_data(as_text=True)) == (404, "the app's own page")
        routed = await client.post("/hello")
        assert (routed.status_code, await routed.get_data(as_text=True)) == (
            405,
            "the app's own page",
        )
