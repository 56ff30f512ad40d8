"""The Shipshape example app: server-rendered Bootstrap pages on the production layer.

``create_app()`` reads the environment once; ``config`` overlays it, which is
how tests and embedders set values::

    app = create_app({"APP_ENV": "testing"})
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from quart import Quart
from quart_schema import Info, OpenAPIProvider, QuartSchema
from werkzeug.routing import Rule

from app.models import Base
from shipshape import Shipshape, environ_config
from shipshape.bundling import Bundle
from shipshape.database import Database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Bootstrap comes from npm (package-lock.json pins it) and is served by the
# app itself: no CDN, so no third-party origin in the CSP and no outage or
# tracking from one. SHIPSHAPE_ASSET_CDN=True serves the same files from
# jsDelivr with SRI instead. Vendor files ship minified; ours are minified
# at build.
JSDELIVR = "https://cdn.jsdelivr.net/npm/"
BUNDLES = (
    Bundle(
        "bootstrap.css",
        ("node_modules/bootstrap/dist/css/bootstrap.min.css",),
        minify=False,
        cdn=JSDELIVR + "bootstrap@{version}/dist/css/bootstrap.min.css",
    ),
    Bundle(
        "bootstrap-icons.css",
        ("node_modules/bootstrap-icons/font/bootstrap-icons.min.css",),
        minify=False,
        cdn=JSDELIVR + "bootstrap-icons@{version}/font/bootstrap-icons.min.css",
    ),
    Bundle(
        "bootstrap.js",
        ("node_modules/bootstrap/dist/js/bootstrap.bundle.min.js",),
        minify=False,
        cdn=JSDELIVR + "bootstrap@{version}/dist/js/bootstrap.bundle.min.js",
    ),
    Bundle("app.css", ("src/app/static/src/css/*.css",)),
    Bundle("app.js", ("src/app/static/src/js/*.js",)),
    # /docs: Swagger UI, served by the app like Bootstrap, started by our own script.
    Bundle(
        "swagger-ui.css",
        ("node_modules/swagger-ui-dist/swagger-ui.css",),
        minify=False,
        cdn=JSDELIVR + "swagger-ui-dist@{version}/swagger-ui.css",
    ),
    Bundle(
        "swagger-ui.js",
        ("node_modules/swagger-ui-dist/swagger-ui-bundle.js",),
        minify=False,
        cdn=JSDELIVR + "swagger-ui-dist@{version}/swagger-ui-bundle.js",
    ),
    Bundle("api-docs.css", ("src/app/static/src/docs/*.css",)),
    Bundle("api-docs.js", ("src/app/static/src/docs/*.js",)),
)
OPENAPI_PATH = "/openapi.json"
API_DOCS_PATH = "/docs"


class APIOnly(OpenAPIProvider):
    """The OpenAPI document describes the JSON API, not the HTML pages beside it."""

    def generate_rules(self) -> Iterable[Rule]:
        return (rule for rule in super().generate_rules() if rule.rule.startswith("/api/"))

    def schema(self) -> dict[str, Any]:
        """quart-schema's document, with the answers that have no body (204, 304)."""
        from app.blueprints.api import BODILESS_RESPONSES

        document = super().schema()
        for (method, path), answers in BODILESS_RESPONSES.items():
            responses = document["paths"][path][method]["responses"]
            responses.update({status: {"description": text} for status, text in answers.items()})
        return document

    def build_request_body(self, model: Any, source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """quart-schema's, marked required: a write with no body is refused (400)."""
        body, definitions = super().build_request_body(model, source)
        return {**body, "required": True}, definitions

    def build_response_object(
        self, model: Any, headers_model: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """quart-schema's, with the response's headers where OpenAPI has them: quart-schema
        0.25 puts them in ``content``, as if ``headers`` were a media type."""
        response, definitions = super().build_response_object(model, headers_model)
        headers = response.get("content", {}).pop("headers", None)
        if headers is not None:
            response["headers"] = headers
        return response, definitions


#: What /openapi.json and /docs say before the routes: how a client writes.
API_DESCRIPTION = (
    "Writes (POST, PUT, DELETE) need the session's CSRF token in the `X-CSRF-Token` "
    "header, with the session cookie it belongs to: `GET /api/csrf-token` returns the "
    "token and sets the cookie, so a client keeps the cookie and sends both. Without "
    "them a write is refused with 400 `csrf_failed` before it runs. This page sends "
    "them for you. A replace names the version it was made against (`If-Match` or "
    "`version`); a stale one is 409 or 412 with the current thing. Every address is "
    "limited per client (429 with `Retry-After`)."
)


def create_app(config: Mapping[str, Any] | None = None) -> Quart:
    """Build the app from the environment, overlaid by ``config``."""
    # Static files are served by Shipshape's middleware, not Quart's route.
    app = Quart(__name__, static_folder=None, instance_path=str(PROJECT_ROOT / "instance"))
    app.config.update(
        SHIPSHAPE_ASSET_BUNDLES=BUNDLES,
        SHIPSHAPE_ASSET_ROOT=str(PROJECT_ROOT),
        SHIPSHAPE_ASSET_DIR=str(Path(app.root_path) / "static" / "dist"),
        SHIPSHAPE_ERROR_TEMPLATE="error.html",
        # The example single-page frontend (frontend/, built by `make frontend`).
        SHIPSHAPE_SPA_DIR=str(PROJECT_ROOT / "frontend" / "dist"),
        SHIPSHAPE_SPA_MOUNT="/app",
        SHIPSHAPE_SPA_BUILD_COMMAND="make frontend",
    )
    app.config.update(environ_config(os.environ))
    if config:
        app.config.update(config)
    shipshape = Shipshape(app)
    app.debug = shipshape.settings.is_development
    Database(app, metadata=Base.metadata, migrations=MIGRATIONS)
    QuartSchema(
        app,
        info=Info(title="Shipshape Things API", version="1.0", description=API_DESCRIPTION),
        openapi_path=OPENAPI_PATH,
        # The stock pages load their scripts from CDNs with inline code, which
        # the CSP refuses: /docs is the app's own page (app.blueprints.pages).
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        openapi_provider_class=APIOnly,
    )

    from app.blueprints import api, pages, things

    app.register_blueprint(pages.blueprint)
    app.register_blueprint(things.blueprint)
    app.register_blueprint(api.blueprint)
    return app
