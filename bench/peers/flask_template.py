"""The template repository's stack rendering the same home page as Shipshape.

Flask + Flask-Compress + Flask-Talisman (CSP with nonces) + Flask-WTF (the
cookie banner's CSRF token in the session) + Flask-Assets (bundles with
their automatic rebuild check), on gunicorn sync workers, rendering a
template with the same layout, banner, flash area and asset tags as the
example app's home page.

Flask-Limiter is left out because Shipshape does not rate-limit the home page
yet; with it the Flask stack would do more work per request.
"""

from __future__ import annotations

from flask import Flask, render_template
from flask_assets import Bundle, Environment
from flask_compress import Compress
from flask_talisman import Talisman
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import HiddenField, RadioField

from bench.peers.common import STATIC_DIR

app = Flask(
    __name__,
    static_folder=str(STATIC_DIR),
    static_url_path="/static",
    template_folder="flask_templates",
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
assets.directory = str(STATIC_DIR)
assets.url = "/static"
manifest = {
    p.name.split("-")[0] + p.suffix: p.name
    for p in STATIC_DIR.glob("*.min.*")
    if p.suffix in (".css", ".js")
}
assets.register("css_all", Bundle(*sorted(n for n in manifest.values() if n.endswith(".css"))))
assets.register("js_all", Bundle(*sorted(n for n in manifest.values() if n.endswith(".js"))))


class BannerForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no types
    choice = RadioField(choices=[("accept", "Accept"), ("reject", "Reject")])
    next = HiddenField()


@app.get("/")
def home() -> str:
    return render_template("home.html", form=BannerForm(), show_cookie_banner=True)
