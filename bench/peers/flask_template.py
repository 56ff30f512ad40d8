"""The template repository's stack rendering the example app's own home page.

Flask + Flask-Compress + Flask-Talisman (CSP with nonces) + Flask-WTF (the
cookie banner's CSRF token in the session) + Flask-Assets (bundles with
their automatic rebuild check), on gunicorn sync workers. It renders
``src/app/templates/home.html`` itself; the three helpers those templates
call (``asset``, ``csrf_field``, ``csp_nonce``) are supplied the way that
stack supplies them, so both stacks do the same work for the same page.

Flask-Limiter is left out because Shipshape does not rate-limit the home page
yet; with it the Flask stack would do more work per request.
"""

from __future__ import annotations

import json

from flask import Flask, render_template, request
from flask_assets import Bundle, Environment
from flask_compress import Compress
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect, generate_csrf
from markupsafe import Markup

from app import PROJECT_ROOT
from bench.peers.common import static_dir


def page_app(name: str) -> Flask:
    """Flask with the template repository's page extensions, rendering the example
    app's templates: Compress, Talisman with nonces, Flask-WTF, Flask-Assets."""
    static = static_dir()
    app = Flask(
        name,
        static_folder=str(static),
        static_url_path="/static",
        template_folder=str(PROJECT_ROOT / "src" / "app" / "templates"),
    )
    app.config.update(SECRET_KEY="bench-only-" + "f" * 40)
    Compress(app)
    CSRFProtect(app)
    Talisman(
        app,
        force_https=False,
        content_security_policy={
            "default-src": "'none'",
            "script-src": "'self'",
            "style-src": "'self'",
            "img-src": ["'self'", "data:"],
            "font-src": "'self'",
            "connect-src": "'self'",
            "form-action": "'self'",
            "base-uri": "'self'",
            "frame-ancestors": "'none'",
        },
        content_security_policy_nonce_in=["script-src", "style-src"],
    )
    assets = Environment(app)
    assets.directory = str(static)
    assets.url = "/static"
    for name_, entry in json.loads((static / "manifest.json").read_text()).items():
        if name_.endswith((".css", ".js")):
            assets.register(name_, Bundle(entry["path"]))

    @app.template_global()
    def asset(name: str) -> Markup:
        """The tag for a Flask-Assets bundle (no SRI: the template did not use it)."""
        url = assets[name].urls()[0]
        nonce = getattr(request, "csp_nonce", "")  # set per request by Talisman
        if name.endswith(".css"):
            return Markup('<link rel="stylesheet" href="{}" nonce="{}">').format(url, nonce)
        return Markup('<script src="{}" nonce="{}" defer></script>').format(url, nonce)

    @app.template_global()
    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(generate_csrf())

    return app


def create_app() -> Flask:
    app = page_app(__name__)

    @app.get("/")
    def home() -> str:
        return render_template("home.html", show_cookie_banner=True)

    return app
