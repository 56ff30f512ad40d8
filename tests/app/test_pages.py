from __future__ import annotations

import base64
import hashlib
import json
import re
from http.cookies import SimpleCookie

import brotli
import pytest
from quart import Quart

from app import PROJECT_ROOT, create_app
from app.blueprints.pages import COOKIE_NAME, read_policy
from tests.conftest import Client, csrf_from

PAGES = [
    ("/", "Production-ready on day one"),
    ("/cookies", "Save cookie settings"),
    ("/privacy", "Privacy notice"),
    ("/accessibility", "Accessibility statement"),
]


@pytest.mark.parametrize(("path", "heading"), PAGES)
async def test_every_page_renders_the_layout(client: Client, path: str, heading: str) -> None:
    response = await client.get(path)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert heading in html
    # Layout: skip link, landmarks, navbar toggler, footer links.
    assert 'href="#main">Skip to main content</a>' in html
    assert '<main id="main"' in html and "<header>" in html and "<footer" in html
    assert 'class="navbar-toggler"' in html and 'data-bs-target="#main-nav"' in html
    for link in ("/privacy", "/cookies", "/accessibility"):
        assert f'<li class="list-inline-item"><a href="{link}">' in html
    assert f'href="{path}" aria-current="page"' in html


async def test_home_page_claims_only_what_is_switched_on(client: Client) -> None:
    response = await client.get("/")
    html = await response.get_data(as_text=True)
    lead = re.search(r'<p class="lead[^"]*">(.*?)</p>', html, re.DOTALL)
    assert lead is not None
    claims = " ".join(lead[1].split())
    assert claims.endswith("switched on by default.")
    assert "security headers" in claims and "'nonce-" in response.headers["Content-Security-Policy"]
    assert "CSRF-protected forms" in claims
    assert csrf_from(await (await client.get("/cookies")).get_data(as_text=True))
    assert "health checks" in claims and (await client.get("/healthz")).status_code == 200
    assert "rate limits" in claims
    assert response.headers["RateLimit-Policy"].endswith(";q=100000;w=1"), "the default limit"


async def test_bootstrap_is_served_by_the_app_with_sri(client: Client) -> None:
    html = await (await client.get("/")).get_data(as_text=True)
    tags = re.findall(
        r'<(?:link rel="stylesheet" href|script src)="([^"]+)" integrity="([^"]+)"', html
    )
    urls = [url for url, _ in tags]
    assert len(tags) == 5
    assert all(url.startswith("/static/") for url in urls), "no CDN by default"
    assert any(re.fullmatch(r"/static/bootstrap-[0-9a-f]{16}\.min\.css", u) for u in urls)
    assert any(re.fullmatch(r"/static/bootstrap-[0-9a-f]{16}\.min\.js", u) for u in urls)
    for url, integrity in tags:
        response = await client.get(url)
        assert response.status_code == 200
        body = await response.get_data(as_text=False)
        digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
        assert integrity == f"sha384-{digest}"


async def test_no_inline_styles_or_scripts(client: Client) -> None:
    for path, _ in PAGES:
        html = await (await client.get(path)).get_data(as_text=True)
        assert " style=" not in html
        assert "<style" not in html
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None


async def test_cookie_form_defaults_to_no(client: Client) -> None:
    html = await (await client.get("/cookies")).get_data(as_text=True)
    assert re.search(r'id="functional-1"[^>]*value="no"|value="no"[^>]*id="functional-1"', html)
    assert len(re.findall(r"checked", html)) == 2


async def test_cookie_form_valid_post_sets_cookie_and_flashes(client: Client) -> None:
    token = csrf_from(await (await client.get("/cookies")).get_data(as_text=True))
    response = await client.post(
        "/cookies", form={"functional": "yes", "analytics": "no", "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/cookies"
    set_cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    assert len(set_cookie) == 1
    cookie = set_cookie[0]
    assert "Max-Age=31536000" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    page = await client.get("/cookies")
    html = await page.get_data(as_text=True)
    assert "Your cookie settings were saved." in html
    assert 'class="alert alert-success alert-dismissible' in html
    assert 'data-bs-dismiss="alert"' in html
    # The form is pre-filled from the cookie that was just set.
    checked = re.findall(r"<input[^>]*checked[^>]*>", html)
    assert any('id="functional-0"' in tag for tag in checked)
    assert any('id="analytics-1"' in tag for tag in checked)
    # The flash is shown once.
    again = await (await client.get("/cookies")).get_data(as_text=True)
    assert "Your cookie settings were saved." not in again


FUNCTIONAL = "Select yes or no for functional cookies"
ANALYTICS = "Select yes or no for analytics cookies"


def checked_ids(html: str) -> set[str]:
    return set(re.findall(r'<input[^>]*\bchecked\b[^>]*\bid="([\w-]+)"', html)) | set(
        re.findall(r'<input[^>]*\bid="([\w-]+)"[^>]*\bchecked\b', html)
    )


def summary_errors(html: str) -> list[tuple[str, str]]:
    """(field id, message) for each link in the error summary."""
    return re.findall(r'<a class="alert-link" href="#([\w-]+)">([^<]*)</a>', html)


def field_errors(html: str) -> list[tuple[str, str]]:
    """(field id, message) for each message shown beside its field."""
    return re.findall(
        r'<div class="invalid-feedback d-block" id="([\w-]+)-error">([^<]*)</div>', html
    )


@pytest.mark.parametrize(
    ("saved", "form", "errors", "checked"),
    [
        (None, {}, [("functional", FUNCTIONAL), ("analytics", ANALYTICS)], set()),
        (None, {"functional": "yes"}, [("analytics", ANALYTICS)], {"functional-0"}),
        (None, {"analytics": "no"}, [("functional", FUNCTIONAL)], {"analytics-1"}),
        (
            None,
            {"functional": "maybe", "analytics": "no"},
            [("functional", FUNCTIONAL)],
            {"analytics-1"},
        ),
        (
            None,
            {"functional": "", "analytics": "Yes"},
            [("functional", FUNCTIONAL), ("analytics", ANALYTICS)],
            set(),
        ),
        # A saved answer is not shown checked once a submission leaves it out or garbles it.
        (
            {"functional": True, "analytics": True},
            {"analytics": "no"},
            [("functional", FUNCTIONAL)],
            {"analytics-1"},
        ),
        (
            {"functional": False, "analytics": True},
            {"functional": "maybe", "analytics": "maybe"},
            [("functional", FUNCTIONAL), ("analytics", ANALYTICS)],
            set(),
        ),
    ],
)
async def test_cookie_form_invalid_post_shows_one_message_per_field_and_saves_nothing(
    client: Client,
    saved: dict[str, bool] | None,
    form: dict[str, str],
    errors: list[tuple[str, str]],
    checked: set[str],
) -> None:
    if saved is not None:
        client.set_cookie("localhost", COOKIE_NAME, json.dumps(saved))
    token = csrf_from(await (await client.get("/cookies")).get_data(as_text=True))
    response = await client.post("/cookies", form={**form, "csrf_token": token})
    html = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert not any(h.startswith(COOKIE_NAME) for h in response.headers.getlist("Set-Cookie"))
    assert "There is a problem" in html and "data-error-summary" in html
    assert "<title>Error: Cookies" in html
    # The same single message per field in the summary and beside the field; the summary
    # links to each group's first radio, which takes focus (its fieldset does not).
    assert summary_errors(html) == [(f"{field}-0", message) for field, message in errors]
    assert field_errors(html) == errors
    assert "Not a valid choice" not in html
    # Only a valid submitted answer is checked: never a default or saved one.
    assert checked_ids(html) == checked
    for field, _ in errors:
        assert f'id="{field}" aria-describedby="{field}-help {field}-error"' in html
        assert f'aria-invalid="true" class="form-check-input is-invalid" id="{field}-0"' in html
        # Regression (newcomer run): only the class said so, not the accessibility tree.
        assert (
            html.count(f'aria-invalid="true" class="form-check-input is-invalid" id="{field}-') == 2
        )


@pytest.mark.parametrize(
    "token",
    [None, "", "not-base64!!", "A" * 86, "tampered"],
    ids=["missing", "empty", "garbage", "wrong-secret", "tampered"],
)
async def test_cookie_form_csrf_failure_shows_friendly_page(
    client: Client, token: str | None
) -> None:
    real = csrf_from(await (await client.get("/cookies")).get_data(as_text=True))
    form = {"functional": "yes", "analytics": "yes"}
    if token == "tampered":
        form["csrf_token"] = real[:-2] + ("AA" if real[-2:] != "AA" else "BB")
    elif token is not None:
        form["csrf_token"] = token
    response = await client.post("/cookies", form=form)
    html = await response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The form expired" in html and "Nothing was saved." in html
    assert '<a class="btn btn-primary" href="/cookies" data-back>Back to the form</a>' in html
    assert not any(h.startswith(COOKIE_NAME) for h in response.headers.getlist("Set-Cookie"))
    cookies_page = await (await client.get("/cookies")).get_data(as_text=True)
    assert "were saved" not in cookies_page


async def test_cookie_form_with_bad_json_cookie_uses_defaults(client: Client) -> None:
    client.set_cookie("localhost", COOKIE_NAME, "{not json")
    response = await client.get("/cookies")
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    checked = re.findall(r"<input[^>]*checked[^>]*>", html)
    assert {re.search(r'id="(\w+-\d)"', tag)[1] for tag in checked} == {  # type: ignore[index]
        "functional-1",
        "analytics-1",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, {"functional": "no", "analytics": "no"}),
        ("[]", {"functional": "no", "analytics": "no"}),
        ('{"functional": "yes"}', {"functional": "no", "analytics": "no"}),
        (
            json.dumps({"functional": True, "analytics": False}),
            {"functional": "yes", "analytics": "no"},
        ),
        ('{"analytics": true, "extra": 1}', {"functional": "no", "analytics": "yes"}),
        # Regression (found by tests/app/test_fuzz.py): RecursionError, and /cookies was a 500.
        ("[" * 5000 + "]" * 5000, {"functional": "no", "analytics": "no"}),
    ],
)
def test_read_policy(raw: str | None, expected: dict[str, str]) -> None:
    assert read_policy(raw) == expected


async def test_flash_messages_are_escaped(app: Quart) -> None:
    from quart import flash, render_template

    async with app.test_request_context("/"):
        await flash("<script>alert(1)</script>", "danger")
        html = await render_template("home.html")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_banner_shows_until_a_choice_is_saved(client: Client) -> None:
    home = await (await client.get("/")).get_data(as_text=True)
    assert "data-cookie-banner" in home and 'name="next" value="/"' in home
    assert "data-cookie-banner" not in await (await client.get("/cookies")).get_data(as_text=True)
    client.set_cookie("localhost", COOKIE_NAME, '{"functional":false,"analytics":false}')
    assert "data-cookie-banner" not in await (await client.get("/")).get_data(as_text=True)


@pytest.mark.parametrize(
    "raw", ["garbled", "[]", "{}", '{"functional":true}', '{"analytics":"no"}', "[" * 50]
)
async def test_a_cookie_without_the_banners_choice_shows_the_banner(
    client: Client, raw: str
) -> None:
    """A garbled consent cookie records no choice, so the banner asks again (it was hidden
    by any cookie of that name)."""
    client.set_cookie("localhost", COOKIE_NAME, raw)
    assert "data-cookie-banner" in await (await client.get("/")).get_data(as_text=True)


@pytest.mark.parametrize(
    ("choice", "next_path", "location", "saved"),
    [
        ("accept", "/privacy?x=1", "/privacy?x=1", {"functional": False, "analytics": True}),
        ("reject", "/", "/", {"functional": False, "analytics": False}),
        ("reject", "//evil.example/", "/cookies", {"functional": False, "analytics": False}),
        ("reject", "/\\evil.example", "/cookies", {"functional": False, "analytics": False}),
        ("accept", "https://evil.example/", "/cookies", {"functional": False, "analytics": True}),
        ("accept", "", "/cookies", {"functional": False, "analytics": True}),
        # Regression: browsers drop a tab, so "/\t/evil" read as "//evil" (open redirect).
        ("accept", "/\t/evil.example", "/cookies", {"functional": False, "analytics": True}),
        ("accept", "/\n/evil.example", "/cookies", {"functional": False, "analytics": True}),
        ("accept", "/privacy\r\nSet-Cookie: x=1", "/cookies",
         {"functional": False, "analytics": True}),
        ("accept", "/\x00", "/cookies", {"functional": False, "analytics": True}),
        ("accept", "/a\\b", "/cookies", {"functional": False, "analytics": True}),
        # Security probe: raw UTF-8 bytes went into Location; now percent-encoded.
        ("accept", "/\u3000/evil.example", "/%E3%80%80/evil.example",
         {"functional": False, "analytics": True}),
        ("accept", "/\x85/x?q=caf\u00e9", "/%C2%85/x?q=caf%C3%A9",
         {"functional": False, "analytics": True}),
    ],
)  # fmt: skip
async def test_banner_choice(
    client: Client, choice: str, next_path: str, location: str, saved: dict[str, bool]
) -> None:
    token = csrf_from(await (await client.get("/")).get_data(as_text=True))
    response = await client.post(
        "/cookies", form={"choice": choice, "next": next_path, "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == location
    (cookie,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    assert json.loads(SimpleCookie(cookie)[COOKIE_NAME].value) == saved
    page = await (await client.get("/privacy")).get_data(as_text=True)
    assert f"You have {choice}ed analytics cookies" in page
    assert "data-cookie-banner" not in page


@pytest.mark.parametrize("choice", ["accept", "reject"])
@pytest.mark.parametrize("functional", [True, False])
async def test_banner_choice_sets_analytics_only(
    client: Client, choice: str, functional: bool
) -> None:
    """The banner asks about analytics cookies; a saved functional choice stays as it was."""
    client.set_cookie(
        "localhost", COOKIE_NAME, json.dumps({"functional": functional, "analytics": False})
    )
    token = csrf_from(await (await client.get("/cookies")).get_data(as_text=True))
    response = await client.post(
        "/cookies", form={"choice": choice, "next": "/", "csrf_token": token}
    )
    assert response.status_code == 303
    (cookie,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    saved = json.loads(SimpleCookie(cookie)[COOKIE_NAME].value)
    assert saved == {"functional": functional, "analytics": choice == "accept"}
    html = await (await client.get("/cookies")).get_data(as_text=True)
    assert checked_ids(html) == {
        "functional-0" if functional else "functional-1",
        "analytics-0" if choice == "accept" else "analytics-1",
    }


async def test_banner_with_a_bad_choice_saves_nothing(client: Client) -> None:
    """Regression: the 422 said nothing, and showed the settings form blank, not as saved."""
    client.set_cookie(
        "localhost", COOKIE_NAME, json.dumps({"functional": True, "analytics": False})
    )
    token = csrf_from(await (await client.get("/cookies")).get_data(as_text=True))
    response = await client.post("/cookies", form={"choice": "maybe", "csrf_token": token})
    assert response.status_code == 422
    assert not any(h.startswith(COOKIE_NAME) for h in response.headers.getlist("Set-Cookie"))
    html = await response.get_data(as_text=True)
    assert "Choose accept or reject." in html
    assert checked_ids(html) == {"functional-0", "analytics-1"}, "the settings as saved"
    assert "is-invalid" not in html, "the settings themselves are not in error"
    missing = await client.post("/cookies", form={"choice": "accept"})
    assert missing.status_code == 400


async def test_static_assets_are_immutable_precompressed_and_secured(client: Client) -> None:
    html = await (await client.get("/")).get_data(as_text=True)
    match = re.search(r'href="(/static/bootstrap-[0-9a-f]{16}\.min\.css)"', html)
    assert match is not None
    response = await client.get(match[1], headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "br"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert "X-Request-ID" in response.headers
    missing = await client.get("/static/nope.css")
    assert missing.status_code == 404 and "Page not found" in await missing.get_data(as_text=True)


async def test_cdn_option_serves_bootstrap_from_jsdelivr_with_sri() -> None:
    app = create_app({"APP_ENV": "testing", "SHIPSHAPE_ASSET_CDN": True})
    async with app.test_app():
        response = await app.test_client().get("/")
    html = await response.get_data(as_text=True)
    version = json.loads((PROJECT_ROOT / "node_modules/bootstrap/package.json").read_text())[
        "version"
    ]
    raw = (PROJECT_ROOT / "node_modules/bootstrap/dist/css/bootstrap.min.css").read_bytes()
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(raw).digest()).decode()
    url = f"https://cdn.jsdelivr.net/npm/bootstrap@{version}/dist/css/bootstrap.min.css"
    assert f'href="{url}" integrity="{integrity}" crossorigin="anonymous"' in html
    assert re.search(r'src="/static/app-[0-9a-f]{16}\.min\.js"', html), "own files stay local"
    csp = response.headers["Content-Security-Policy"]
    for directive in ("script-src", "style-src", "font-src"):
        assert re.search(rf"{directive} [^;]*https://cdn\.jsdelivr\.net", csp)
    assert "jsdelivr" not in csp.split("img-src")[1].split(";")[0]


async def test_default_csp_names_no_cdn(client: Client) -> None:
    response = await client.get("/")
    assert "jsdelivr" not in response.headers["Content-Security-Policy"]


async def test_pages_are_compressed_and_tokens_differ_per_response(client: Client) -> None:
    tokens = []
    for _ in range(3):
        response = await client.get("/cookies", headers={"Accept-Encoding": "br, gzip"})
        assert response.headers["Content-Encoding"] == "br"
        assert "Accept-Encoding" in response.headers["Vary"]
        html = brotli.decompress(await response.get_data(as_text=False)).decode()
        tokens.append(csrf_from(html))
    assert len(set(tokens)) == 3, "masked per response, so compression cannot leak it (BREACH)"
    for token in tokens:
        response = await client.post(
            "/cookies", form={"functional": "no", "analytics": "no", "csrf_token": token}
        )
        assert response.status_code == 303


async def test_pages_render_with_csrf_switched_off() -> None:
    app = create_app({"APP_ENV": "testing", "SHIPSHAPE_CSRF": False})
    async with app.test_app():
        response = await app.test_client().get("/")
        html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "data-cookie-banner" in html and 'name="csrf_token"' not in html
