"""Server-rendered pages: home, cookie consent, privacy and accessibility."""

from __future__ import annotations

import json
from datetime import timedelta

from quart import Blueprint, current_app, flash, redirect, request
from quart.typing import ResponseReturnValue
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Response as BaseResponse

from app.forms import CookieBannerForm, CookiesForm
from shipshape import render_template

blueprint = Blueprint("pages", __name__)

COOKIE_NAME = "cookies_policy"
COOKIE_MAX_AGE = timedelta(days=365)  # one year, the usual consent lifetime
DEFAULT_POLICY = {"functional": "no", "analytics": "no"}  # nothing optional until asked


def _saved(raw: str | None) -> dict[str, object] | None:
    """The JSON object the cookie holds, or ``None`` when it is absent or garbled."""
    if not raw:
        return None
    try:
        saved = json.loads(raw)
    except (ValueError, RecursionError):  # a cookie nested thousands deep: garbled too
        return None
    return saved if isinstance(saved, dict) else None


def read_policy(raw: str | None) -> dict[str, str]:
    """The saved choices, each a default where the cookie is absent, garbled or silent."""
    saved = _saved(raw) or {}
    return {
        key: ("yes" if value else "no") if isinstance(value := saved.get(key), bool) else default
        for key, default in DEFAULT_POLICY.items()
    }


def analytics_chosen(raw: str | None) -> bool:
    """Whether the cookie records the choice that the banner asks for."""
    return isinstance((_saved(raw) or {}).get("analytics"), bool)


@blueprint.get("/")
async def index() -> str:
    return await render_template("home.html")


@blueprint.app_context_processor
async def cookie_banner() -> dict[str, bool]:
    """Show the consent banner until a choice is saved, except on the cookies page; a
    garbled cookie is no choice, so the banner asks again."""
    return {
        "show_cookie_banner": request.path != "/cookies"
        and not analytics_chosen(request.cookies.get(COOKIE_NAME))
    }


def safe_next(target: str | None) -> str:
    """A same-site path to return to; anything else is /cookies.

    Refused: other sites (``//evil``, ``https://…``), backslashes (``/\\evil``,
    which browsers read as ``//evil``), and every control character: browsers
    drop a tab or newline from a URL, so ``/<tab>/evil.example`` would become the
    protocol-relative ``//evil.example``, and CR or LF cannot go in a header.
    Other text outside ASCII is percent-encoded, as a header value must be.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return iri_to_uri(target)
    return "/cookies"


def save_policy(response: BaseResponse, choices: dict[str, bool]) -> BaseResponse:
    response.set_cookie(
        COOKIE_NAME,
        json.dumps(choices, separators=(",", ":")),
        max_age=COOKIE_MAX_AGE,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return response


@blueprint.route("/cookies", methods=["GET", "POST"])
async def cookies() -> ResponseReturnValue:
    if request.method == "POST" and "choice" in await request.form:
        return await banner_choice()
    form = await CookiesForm.from_request(data=read_policy(request.cookies.get(COOKIE_NAME)))
    if form.validate_on_submit():
        choices = {name: form[name].data == "yes" for name in DEFAULT_POLICY}
        await flash("Your cookie settings were saved.", "success")
        # post/redirect/get: a reload never posts again
        return save_policy(redirect("/cookies", 303), choices)
    page = await render_template("cookies.html", form=form)
    return (page, 422) if form.is_submitted() else page


async def banner_choice() -> ResponseReturnValue:
    """The banner's one-click accept or reject, then back to the page it was on."""
    banner = await CookieBannerForm.from_request()
    if not banner.validate():
        # Only a hand-made request gets here (the banner's buttons send a valid
        # choice): say what was wrong, on the settings form as saved.
        await flash(f"{banner.choice.errors[0]}.", "danger")
        as_saved = CookiesForm(formdata=None, data=read_policy(request.cookies.get(COOKIE_NAME)))
        return await render_template("cookies.html", form=as_saved), 422
    accepted = banner.choice.data == "accept"
    word = "accepted" if accepted else "rejected"
    await flash(
        f"You have {word} analytics cookies. You can change this on the cookies page.", "success"
    )
    # The banner asks about analytics only; every other choice stays as saved.
    saved = read_policy(request.cookies.get(COOKIE_NAME))
    choices = {name: value == "yes" for name, value in saved.items()} | {"analytics": accepted}
    return save_policy(redirect(safe_next(banner.next.data), 303), choices)


@blueprint.get("/privacy")
async def privacy() -> str:
    return await render_template("privacy.html")


@blueprint.get("/accessibility")
async def accessibility() -> str:
    return await render_template("accessibility.html")


@blueprint.get("/docs")
async def api_docs() -> str:
    """The Things API's interactive documentation (Swagger UI, from the app's own assets)."""
    openapi_path = current_app.extensions["QUART_SCHEMA"].openapi_path
    return await render_template("api_docs.html", openapi_path=openapi_path)
