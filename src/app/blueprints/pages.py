"""Server-rendered pages: home, cookie consent, privacy and accessibility."""

from __future__ import annotations

import json
from datetime import timedelta

from quart import Blueprint, current_app, flash, redirect, render_template, request
from quart.typing import ResponseReturnValue

from app.forms import CookiesForm

blueprint = Blueprint("pages", __name__)

COOKIE_NAME = "cookies_policy"
COOKIE_MAX_AGE = timedelta(days=365)  # one year, the usual consent lifetime
DEFAULT_POLICY = {"functional": "no", "analytics": "no"}  # nothing optional until asked


def read_policy(raw: str | None) -> dict[str, str]:
    """The saved choices, or the defaults when the cookie is absent or garbled."""
    policy = dict(DEFAULT_POLICY)
    if not raw:
        return policy
    try:
        saved = json.loads(raw)
    except ValueError:
        return policy
    if isinstance(saved, dict):
        for key in policy:
            value = saved.get(key)
            if isinstance(value, bool):
                policy[key] = "yes" if value else "no"
    return policy


@blueprint.get("/")
async def index() -> str:
    return await render_template("home.html")


@blueprint.route("/cookies", methods=["GET", "POST"])
async def cookies() -> ResponseReturnValue:
    form = await CookiesForm.from_request(data=read_policy(request.cookies.get(COOKIE_NAME)))
    if form.validate_on_submit():
        choices = {name: form[name].data == "yes" for name in DEFAULT_POLICY}
        value = json.dumps(choices, separators=(",", ":"))
        await flash("Your cookie settings were saved.", "success")
        response = redirect("/cookies", 303)  # post/redirect/get: a reload never re-posts
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=COOKIE_MAX_AGE,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
        return response
    page = await render_template("cookies.html", form=form)
    return (page, 422) if form.is_submitted() else page


@blueprint.get("/privacy")
async def privacy() -> str:
    return await render_template("privacy.html")


@blueprint.get("/accessibility")
async def accessibility() -> str:
    return await render_template("accessibility.html")
