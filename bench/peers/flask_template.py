"""The template repository's stack rendering the example app's own pages.

Flask + Flask-Compress + Flask-Talisman (CSP with nonces) + Flask-WTF (the
CSRF token in the session, and the cookie form) + Flask-Assets (bundles with
their automatic rebuild check) + Flask-Limiter (memory storage, its limit
raised far above the load but counting every request, as Shipshape's default
limit does), on gunicorn sync workers. It renders the example's own
``home.html`` and ``cookies.html`` (with Shipshape's form macros); the
helpers those templates call (``asset``, ``csrf_field``, ``csp_nonce``) are
supplied the way that stack supplies them, so both stacks do the same work
for the same page.
"""

from __future__ import annotations

import json

from flask import Flask, render_template, request
from flask_assets import Bundle, Environment
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_talisman import Talisman
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect, generate_csrf
from jinja2 import ChoiceLoader, FileSystemLoader
from markupsafe import Markup
from wtforms import RadioField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import InputRequired

from bench.peers.common import ADMIT_ALL, PROJECT_ROOT, static_dir

# The example's choices (``app.forms.YES_NO``), spelled here: importing ``app`` would
# import Shipshape, and with it Shipshape's faster html_params for WTForms.
YES_NO = [SelectChoice("yes", "Yes"), SelectChoice("no", "No")]


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
    # Shipshape's form macros (shipshape/forms.html) next to the example's templates.
    templates = PROJECT_ROOT / "src"
    app.jinja_loader = ChoiceLoader(
        [FileSystemLoader(templates / "app" / "templates"),
         FileSystemLoader(templates / "shipshape" / "templates")]
    )  # fmt: skip
    # The frontend's settings as the example app's, so base.html's navbar is the same.
    app.config.update(
        SECRET_KEY="bench-only-" + "f" * 40,
        SHIPSHAPE_SPA_DIR=str(PROJECT_ROOT / "frontend" / "dist"),
        SHIPSHAPE_SPA_MOUNT="/app",
    )
    Limiter(get_remote_address, app=app, default_limits=[ADMIT_ALL], storage_uri="memory://")
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


class CookiesForm(FlaskForm):  # type: ignore[misc]  # flask_wtf has no types
    """The example's cookie form (``app.forms.CookiesForm``) as Flask-WTF spells it."""

    functional = RadioField(
        "Do you want to accept functional cookies?",
        choices=YES_NO,
        validators=[InputRequired("Select yes or no for functional cookies")],
        description="They remember your settings, such as this choice.",
    )
    analytics = RadioField(
        "Do you want to accept analytics cookies?",
        choices=YES_NO,
        validators=[InputRequired("Select yes or no for analytics cookies")],
        description="They tell us how the site is used, so that we can improve it.",
    )


def create_app() -> Flask:
    app = page_app(__name__)

    @app.get("/")
    def home() -> str:
        return render_template("home.html", show_cookie_banner=True)

    @app.get("/cookies")
    def cookies() -> str:
        form = CookiesForm(data={"functional": "no", "analytics": "no"})
        return render_template("cookies.html", form=form, show_cookie_banner=False)

    return app
