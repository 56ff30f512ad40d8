"""Real Chromium against the production app over HTTPS: no CSP violation, Bootstrap works.

Every console warning or error fails a test: that is where Chromium reports a
header it cannot parse, such as an unrecognised Permissions-Policy feature.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from playwright.sync_api import (
    APIResponse,
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    Route,
    expect,
    sync_playwright,
)

from tests.conftest import SECRET, UNLIMITED
from tests.e2e.conftest import CHROMIUM_ARGS, TLS, Server, run_server
from tests.servers import free_port

PAGES = ["/", "/cookies", "/privacy", "/accessibility", "/no/such/page"]
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`);
});
"""


@pytest.fixture(scope="module")
def server(tls: TLS) -> Iterator[Server]:
    port = free_port()
    # A real browser loads pages faster than the default 2/second; limits have their own tests.
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "localhost",
        "RATELIMIT_DEFAULT": UNLIMITED,
    }
    command = [
        "-m", "uvicorn", "app:create_app", "--factory", "--port", str(port),
        "--ssl-keyfile", str(tls.key_file), "--ssl-certfile", str(tls.cert_file),
        "--no-server-header", "--no-access-log",
    ]  # fmt: skip
    with run_server(command, env, base=f"https://localhost:{port}", context=tls.context) as s:
        yield s


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []  # every console warning and error
        self.page_errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.add_init_script(WATCH_VIOLATIONS)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("warning", "error"):
            url = message.location["url"]  # empty for a header Chromium could not parse
            self.console.append(f"{message.type}: {message.text}" + (f" ({url})" if url else ""))

    def violations(self) -> list[str]:
        result: list[str] = self.page.evaluate("window.__violations")
        return result


def load_failed(response: Response) -> str:
    """What Chromium logs for a page sent with an error status: expected, not a fault."""
    return (
        "error: Failed to load resource: the server responded with a status of "
        f"{response.status} ({response.status_text}) ({response.url})"
    )


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    # The throw-away CA is not in Chromium's store; the HTTP client tests verify it.
    context = browser.new_context(ignore_https_errors=True)
    yield Watched(context.new_page())
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_without_violations_or_errors(
    server: Server, watched: Watched, path: str
) -> None:
    response = watched.page.goto(server.base + path, wait_until="load")
    assert response is not None
    assert response.status == (404 if path == "/no/such/page" else 200)
    headers: dict[str, Any] = response.headers
    assert "'nonce-" in headers["content-security-policy"]
    assert headers["strict-transport-security"].startswith("max-age=63072000")
    # Bootstrap's CSS applied: the navbar is dark and flex, so the stylesheet loaded.
    display = watched.page.eval_on_selector(".navbar", "e => getComputedStyle(e).display")
    assert display == "flex"
    assert watched.page.evaluate("typeof bootstrap") == "object", "Bootstrap's JS ran"
    assert watched.violations() == []
    assert watched.console == ([load_failed(response)] if response.status == 404 else [])
    assert watched.page_errors == []


def test_navbar_toggler_works_on_a_small_screen(server: Server, watched: Watched) -> None:
    page = watched.page
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto(server.base + "/")
    menu = page.locator("#main-nav")
    assert not menu.is_visible()
    page.click(".navbar-toggler")
    page.wait_for_selector("#main-nav.show")
    assert menu.is_visible()
    assert page.get_attribute(".navbar-toggler", "aria-expanded") == "true"
    # Escape closes it from inside, and the button has focus again (accessibility audit).
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('main-nav').contains(document.activeElement)")
    page.keyboard.press("Escape")
    page.wait_for_selector("#main-nav:not(.show)", state="attached")
    expect(page.locator(".navbar-toggler")).to_be_focused()
    assert page.get_attribute(".navbar-toggler", "aria-expanded") == "false"
    assert watched.violations() == [] and watched.console == []


def test_cookie_form_post_and_dismissible_alert(server: Server, watched: Watched) -> None:
    page = watched.page
    page.goto(server.base + "/cookies")
    page.check("#functional-0")
    page.check("#analytics-1")
    page.click("button[type=submit]")
    alert = page.locator(".alert-success")
    alert.wait_for()
    assert "Your cookie settings were saved." in alert.inner_text()
    # Focused, so that a screen reader reads it: a status present at load is not announced.
    assert page.evaluate("document.activeElement.hasAttribute('data-flash')")
    assert page.is_checked("#functional-0") and page.is_checked("#analytics-1")
    page.click(".alert-success .btn-close")
    alert.wait_for(state="detached")
    assert watched.violations() == [] and watched.console == []


def test_invalid_form_focuses_the_error_summary(server: Server, watched: Watched) -> None:
    page = watched.page
    page.goto(server.base + "/cookies")
    page.evaluate("document.querySelectorAll('input[type=radio]').forEach(r => r.checked = false)")
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    response = navigation.value
    assert response is not None and response.status == 422
    page.wait_for_selector("[data-error-summary]")
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    page.click("[data-error-summary] a[href='#functional-0']")
    assert page.url.endswith("#functional-0")
    # Regression: the link went to the fieldset, and focus fell to <body>.
    assert page.evaluate("document.activeElement.id") == "functional-0"
    assert watched.violations() == [] and watched.console == [load_failed(response)]


def test_cookie_banner_reject_returns_to_the_page(server: Server, watched: Watched) -> None:
    page = watched.page
    page.goto(server.base + "/privacy")
    page.locator("[data-cookie-banner]").wait_for()
    page.click("[data-cookie-banner] button[value=reject]")
    page.wait_for_url(server.base + "/privacy")
    assert "You have rejected analytics cookies" in page.locator(".alert-success").inner_text()
    assert page.evaluate("document.activeElement.hasAttribute('data-flash')")
    assert page.locator("[data-cookie-banner]").count() == 0
    # Closing the flash by keyboard leaves focus in the page's main content, not <body>.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Close"
    page.keyboard.press("Enter")
    page.locator("[data-flash]").wait_for(state="detached")
    assert page.evaluate("document.activeElement.id") == "main"
    session = [c for c in page.context.cookies() if c["name"] == "__Host-session"]
    assert session and session[0]["secure"] and session[0]["httpOnly"]
    assert session[0]["sameSite"] == "Lax"
    assert watched.violations() == [] and watched.console == []


def test_a_header_chromium_cannot_parse_fails_the_watch(server: Server, watched: Watched) -> None:
    """The watch sees header warnings: the same page with one unknown feature added."""

    def add_unknown_feature(route: Route) -> None:
        response = route.fetch()
        headers = dict(response.headers)
        headers["permissions-policy"] += ", web-share=()"
        route.fulfill(response=response, headers=headers)

    watched.page.route(server.base + "/privacy", add_unknown_feature)
    watched.page.goto(server.base + "/privacy", wait_until="load")
    assert any(
        "Permissions-Policy" in m and "Unrecognized feature: 'web-share'" in m
        for m in watched.console
    ), watched.console


# The single-page frontend at /app (frontend/, built by `make frontend`), over the Things API.


def test_frontend_deep_link_renders_without_violations(server: Server, watched: Watched) -> None:
    page = watched.page
    response = page.goto(server.base + "/app/things/new", wait_until="load")
    assert response is not None and response.status == 200
    assert "'nonce-" in response.headers["content-security-policy"]
    page.locator("form #name").wait_for()
    assert page.locator("h1").inner_text() == "Add a thing"
    assert page.title() == "Add a thing · Shipshape"
    # Bootstrap from the build: the navbar is dark and flex.
    assert page.eval_on_selector(".navbar", "e => getComputedStyle(e).display") == "flex"
    token = page.eval_on_selector('meta[name="csrf-token"]', "m => m.content")
    assert len(token) > 40
    page.reload(wait_until="load")  # the deep link survives a reload
    page.locator("form #name").wait_for()
    assert watched.violations() == []
    assert watched.console == [] and watched.page_errors == []


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip", "deflate"])
def test_chromium_reads_the_index_compressed_once_in_every_coding(
    server: Server, watched: Watched, coding: str
) -> None:
    """The index is compressed at start-up and each response splices its nonce and
    token in as stored blocks (shipshape.compression.slots): Chromium's own decoders
    must read it, and the page must run."""
    page = watched.page
    page.set_extra_http_headers({"Accept-Encoding": coding})
    response = page.goto(server.base + "/app/things/new", wait_until="load")
    assert response is not None and response.status == 200
    assert response.headers["content-encoding"] == coding
    page.locator("form #name").wait_for()
    assert page.locator("h1").inner_text() == "Add a thing"
    assert watched.violations() == []
    assert watched.console == [] and watched.page_errors == []


def test_frontend_routes_on_the_client_and_shows_the_api_state(
    server: Server, watched: Watched
) -> None:
    page = watched.page
    page.goto(server.base + "/app/things/new", wait_until="load")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.resource_type == "document" else None)
    page.click("text=Cancel")  # a client-side navigation: no document is loaded
    page.wait_for_url(server.base + "/app/")
    # The URL changes before the list view replaces the form: wait for its heading
    # (a locator's wait, not an expression: the CSP forbids eval), then its data.
    page.locator("h1:text-is('Things')").wait_for()
    page.locator("main .spinner-border").wait_for(state="detached")
    assert requests == []
    assert page.locator("h1").inner_text() == "Things"
    assert page.locator("[data-error-state]").count() == 0  # the API answered
    page.go_back()
    page.locator("form #name").wait_for()
    page.goto(server.base + "/app/no/such/view", wait_until="load")
    assert page.locator("h1").inner_text() == "Page not found"
    assert watched.violations() == [] and watched.console == []
    assert watched.page_errors == []


def test_frontend_reloads_once_when_a_chunk_is_gone(server: Server, watched: Watched) -> None:
    """After a deploy the old index names chunks that 404: reload once, then say so."""
    page = watched.page
    page.route("**/app/assets/form-*.js", lambda route: route.fulfill(status=404, body="gone"))
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    page.goto(server.base + "/app/", wait_until="load")
    page.click("text=Add a thing")
    page.get_by_text("This page could not be loaded").wait_for()
    assert loads == [server.base + "/app/", server.base + "/app/things/new"], "one reload"
    assert watched.violations() == [] and watched.page_errors == []


def test_frontend_offline_says_so_and_tries_again(server: Server, watched: Watched) -> None:
    """Regression (newcomer run): a chunk that failed because the server was down was
    taken for a deploy, and the reload left the tab on the browser's error page."""
    page = watched.page
    page.goto(server.base + "/app/", wait_until="load")
    page.get_by_text("Add a thing").wait_for()
    page.route("**/app/**", lambda route: route.abort("connectionrefused"))  # server down
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    page.click("text=Add a thing")
    page.get_by_text("The server could not be reached").wait_for()
    assert page.evaluate("document.activeElement.tagName") == "H1"
    assert page.title() == "Error: This page could not be loaded · Shipshape"  # WCAG 2.4.2
    assert loads == [] and page.url == server.base + "/app/things/new", "no reload"
    page.get_by_role("button", name="Try again").click()  # still down: still no reload
    page.get_by_text("The server still could not be reached").wait_for()
    assert loads == []
    # A proxy in front of an app that is down answers 502: still not the app.
    page.unroute("**/app/**")
    page.route("**/app/**", lambda route: route.fulfill(status=502, body="Bad Gateway"))
    page.evaluate("document.querySelector('[data-error-state] p').textContent = ''")
    page.get_by_role("button", name="Try again").click()
    page.get_by_text("The server still could not be reached").wait_for()
    assert loads == []
    page.unroute("**/app/**")  # back up
    page.get_by_role("button", name="Try again").click()
    page.locator("form #name").wait_for()
    assert loads == [server.base + "/app/things/new"]
    assert watched.violations() == [] and watched.page_errors == []


@pytest.mark.parametrize("path", ["/things/new", "/app/things/new"])
def test_a_name_of_emoji_fits_the_forms(server: Server, watched: Watched, path: str) -> None:
    """Regression (newcomer run): maxlength counts UTF-16 units, so the forms kept 32 of
    40 emoji, a name the rules allow (64 characters)."""
    page = watched.page
    # One name per form: the module's server keeps both (a port's last digit was the same
    # for both one time in ten, and the second create was a 409).
    name = "\U0001f600" * 39 + ("a" if path.startswith("/app/") else "t")
    page.goto(server.base + path, wait_until="load")
    page.locator("form #name").wait_for()
    page.type("#name", name)
    assert page.input_value("#name") == name
    page.locator("main button[type=submit]").click()  # not the cookie banner's
    page.locator(f"h1:text-is('{name}')").wait_for()
    assert "/things/" in page.url and "new" not in page.url
    assert watched.violations() == []


def api_write(page: Page, method: str, url: str, **data: object) -> APIResponse:
    """A write through the API in the page's session, as another tab would make it."""
    token = page.request.get(url.split("/api/")[0] + "/api/csrf-token").json()["csrf_token"]
    return page.request.fetch(
        url, method=method, data=data or None, headers={"X-CSRF-Token": token}
    )


def api_thing(page: Page, base: str, name: str) -> dict[str, Any]:
    made = api_write(page, "POST", base + "/api/things", name=name)
    assert made.status == 201, made.text()
    thing: dict[str, Any] = made.json()
    return thing


def fetch_failed(status: int, text: str, url: str) -> str:
    """What Chromium logs for an API answer with an error status: expected, not a fault."""
    return (
        "error: Failed to load resource: the server responded with a status of "
        f"{status} ({text}) ({url})"
    )


def test_frontend_stale_delete_shows_the_newer_version_and_keeps_it(
    server: Server, watched: Watched
) -> None:
    page = watched.page
    name = f"SPA stale {free_port()}"
    thing = api_thing(page, server.base, name)
    url = f"{server.base}/api/things/{thing['id']}"
    page.goto(f"{server.base}/app/things/{thing['id']}", wait_until="load")
    page.locator(f"h1:text-is('{name}')").wait_for()
    # Someone else renames it while the page shows version 1.
    assert api_write(page, "PUT", url, name=name + " renamed", version=1).status == 200

    page.click("text=Delete…")
    page.click("[data-confirm]")
    conflict = page.locator("[data-conflict]")
    conflict.wait_for()
    assert "so it was not deleted" in conflict.inner_text()
    assert conflict.locator("dd").all_inner_texts() == [name + " renamed", "No description.", "2"]
    assert page.evaluate("document.activeElement.hasAttribute('data-conflict')")
    assert page.request.get(url).status == 200, "still there"

    page.click("[data-delete-current]")  # the user saw version 2 and still wants it gone
    page.wait_for_url(server.base + "/app/")
    assert page.request.get(url).status == 404
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == [fetch_failed(412, "Precondition Failed", url)]


def test_frontend_stale_edit_asks_with_focus_and_readable_buttons(
    server: Server, watched: Watched
) -> None:
    page = watched.page
    name = f"SPA edit {free_port()}"
    thing = api_thing(page, server.base, name)
    url = f"{server.base}/api/things/{thing['id']}"
    page.goto(f"{server.base}/app/things/{thing['id']}/edit", wait_until="load")
    page.locator("#name").wait_for()
    assert api_write(page, "PUT", url, name=name + " theirs", version=1).status == 200

    page.fill("#name", name + " mine")
    page.click("main form button[type=submit]")
    conflict = page.locator("[data-conflict]")
    conflict.wait_for()
    assert page.evaluate("document.activeElement.hasAttribute('data-conflict')")
    buttons = conflict.locator("button")
    assert buttons.all_inner_texts() == ["Load their version", "Keep mine, save over theirs"]
    for index in range(buttons.count()):  # WCAG 1.4.3 on the warning's yellow
        ratio = buttons.nth(index).evaluate(CONTRAST)
        assert ratio >= 4.5, f"button #{index}: {ratio:.2f}:1"

    page.get_by_role("button", name="Keep mine, save over theirs").click()  # it saves
    page.locator(f"h1:text-is('{name} mine')").wait_for()
    assert page.request.get(url).json()["version"] == 3
    assert watched.violations() == [] and watched.page_errors == []


def test_frontend_says_what_each_write_did_in_one_request(server: Server, watched: Watched) -> None:
    """Regression (newcomer run): no word after a delete, a GET of the thing the write had
    just returned (two requests of the limit's two a second), and a "Try again" on a 404."""
    page = watched.page
    name = f"SPA flash {free_port()}"
    api_calls: list[str] = []
    page.on(
        "request",
        lambda r: api_calls.append(f"{r.method} {r.url}") if "/api/things" in r.url else None,
    )
    page.goto(server.base + "/app/things/new", wait_until="load")
    page.fill("#name", name)
    page.click("main form button[type=submit]")
    page.locator(f"h1:text-is('{name}')").wait_for()
    assert page.locator("[data-flash]").inner_text() == f"“{name}” was added."
    assert [call.split(" ")[0] for call in api_calls] == ["POST"], api_calls

    page.click("text=Delete…")
    page.click("[data-confirm]")
    page.locator("h1:text-is('Things')").wait_for()
    assert page.locator("[data-flash]").inner_text() == f"“{name}” was deleted."

    missing = f"{server.base}/app/things/00000000-0000-4000-8000-000000000000"
    page.goto(missing, wait_until="load")
    state = page.locator("[data-error-state]")
    state.wait_for()
    assert "There is no such thing (404)" in state.inner_text()
    assert state.locator("button").count() == 0  # asking again would only get 404 again
    assert watched.violations() == [] and watched.page_errors == []


def test_frontend_delete_of_a_thing_already_gone_says_so(server: Server, watched: Watched) -> None:
    page = watched.page
    thing = api_thing(page, server.base, f"SPA gone {free_port()}")
    url = f"{server.base}/api/things/{thing['id']}"
    page.goto(f"{server.base}/app/things/{thing['id']}", wait_until="load")
    page.locator("text=Delete…").wait_for()
    assert api_write(page, "DELETE", url).status == 204

    page.click("text=Delete…")
    page.click("[data-confirm]")
    page.locator("[data-gone]").wait_for()
    assert "already gone" in page.locator("[data-gone]").inner_text()
    assert page.url == f"{server.base}/app/things/{thing['id']}"
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == [fetch_failed(404, "Not Found", url)]


@pytest.mark.parametrize("path", ["/app/things/%ZZ", "/app/%E9", "/app/things/%E9/edit"])
def test_frontend_malformed_percent_encoding_is_not_found(
    server: Server, watched: Watched, path: str
) -> None:
    page = watched.page
    response = page.goto(server.base + path, wait_until="load")
    assert response is not None and response.status == 200
    page.locator("h1:text-is('Page not found')").wait_for()
    assert page.title() == "Page not found · Shipshape"
    assert watched.violations() == []
    assert watched.console == [] and watched.page_errors == []


def test_frontend_write_survives_a_new_session(server: Server, watched: Watched) -> None:
    """The session cookie is gone (cleared, expired, a new key): the index's token
    no longer matches, so the SPA fetches the new session's and sends the write again."""
    page = watched.page
    name = f"SPA new session {free_port()}"
    page.goto(server.base + "/app/things/new", wait_until="load")
    page.locator("form #name").wait_for()
    page.context.clear_cookies()
    page.fill("#name", name)
    with page.expect_request("**/api/csrf-token") as asked:
        page.click("button[type=submit]")
    assert asked.value.method == "GET"
    page.wait_for_url("**/app/things/*-*")
    page.locator(f"h1:text-is('{name}')").wait_for()
    listed = page.request.get(server.base + "/api/things?q=" + name.replace(" ", "+"))
    assert listed.json()["total"] == 1
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == [fetch_failed(400, "Bad Request", server.base + "/api/things")]


@pytest.mark.parametrize("link", ["summary", "skip"])
def test_frontend_fragment_links_keep_what_was_typed(
    server: Server, watched: Watched, link: str
) -> None:
    """An error summary's link to its field and the skip link jump within the page:
    Chromium fires popstate for them, which must not draw the view again."""
    page = watched.page
    page.goto(server.base + "/app/things/new", wait_until="load")
    page.locator("form #name").wait_for()
    page.fill("#description", "typed before the mistake")
    page.click("button[type=submit]")  # no name: the summary
    page.locator("[data-error-summary] a[href='#name']").wait_for()
    if link == "summary":
        page.click("[data-error-summary] a[href='#name']")
        page.wait_for_function("document.activeElement && document.activeElement.id === 'name'")
    else:
        page.focus("a[href='#main']")  # visually hidden until focused, as a keyboard user meets it
        page.keyboard.press("Enter")
        page.wait_for_function("document.activeElement && document.activeElement.id === 'main'")
    page.wait_for_timeout(200)  # time for a redraw, had there been one
    assert page.input_value("#description") == "typed before the mistake"
    assert page.locator("[data-error-summary]").count() == 1
    assert watched.violations() == [] and watched.page_errors == []


def test_frontend_first_tab_reaches_the_skip_link(server: Server, watched: Watched) -> None:
    page = watched.page
    page.goto(server.base + "/app/", wait_until="load")
    page.locator("h1").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"


def test_frontend_footer_links_to_the_sites_statements(server: Server, watched: Watched) -> None:
    """Regression (accessibility audit, WCAG 3.2.3): the accessibility statement, privacy
    and cookies were reachable from every server page but not from the SPA."""
    page = watched.page
    page.goto(server.base + "/app/", wait_until="load")
    footer = page.get_by_role("navigation", name="Footer")
    assert footer.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
        "/privacy",
        "/cookies",
        "/accessibility",
    ]
    footer.get_by_role("link", name="Accessibility").click()
    page.wait_for_url(server.base + "/accessibility")  # a page load, not the SPA's router
    assert page.locator("h1").inner_text().startswith("Accessibility")
    assert watched.violations() == [] and watched.page_errors == []


def test_frontend_waits_out_a_short_429_and_sends_once_more(
    server: Server, watched: Watched
) -> None:
    """A 429 refused the write before it ran; with a short Retry-After the SPA waits and
    sends it again (the token renewal makes three requests in a moment, one more than
    the default 2 a second)."""
    page = watched.page
    posts: list[str] = []

    def refuse_first(route: Any) -> None:
        posts.append(route.request.method)
        if len(posts) == 1:
            route.fulfill(
                status=429,
                headers={"Retry-After": "1", "Content-Type": "application/json"},
                json={"error": 429, "code": "rate_limited", "message": "Too many requests."},
            )
        else:
            route.continue_()

    page.route(
        "**/api/things",
        lambda route: refuse_first(route) if route.request.method == "POST" else route.continue_(),
    )
    name = f"SPA after a 429 {free_port()}"
    page.goto(server.base + "/app/things/new", wait_until="load")
    page.locator("form #name").wait_for()
    page.fill("#name", name)
    page.click("button[type=submit]")
    page.wait_for_url("**/app/things/*-*")
    page.locator(f"h1:text-is('{name}')").wait_for()
    assert posts == ["POST", "POST"]
    assert watched.violations() == [] and watched.page_errors == []


def test_frontend_write_refused_twice_shows_the_error(server: Server, watched: Watched) -> None:
    """One retry, not a loop: a token the server refuses again is the user's to see."""
    page = watched.page
    page.route("**/api/csrf-token", lambda route: route.fulfill(json={"csrf_token": "stale"}))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(server.base + "/app/things/new", wait_until="load")
    page.locator("form #name").wait_for()
    page.context.clear_cookies()
    page.fill("#name", f"SPA refused {free_port()}")
    page.click("button[type=submit]")
    page.locator("[data-error-state]").wait_for()
    assert "The form expired" in page.locator("[data-error-state]").inner_text()
    assert posts == [server.base + "/api/things"] * 2
    assert page.url == server.base + "/app/things/new"
    assert watched.violations() == [] and watched.page_errors == []


def test_frontend_page_past_the_end_links_to_the_last_page(
    server: Server, watched: Watched
) -> None:
    page = watched.page
    name = f"SPA paged {free_port()}"
    api_thing(page, server.base, name)
    q = name.replace(" ", "+")
    page.goto(f"{server.base}/app/things/?q={q}&page=3", wait_until="load")
    message = page.locator("[data-no-such-page]")
    message.wait_for()
    assert message.inner_text() == "There is no page 3; the last page is 1. Go to the last page."
    assert "No things" not in page.locator("main").inner_text()
    page.click("text=Go to the last page")
    page.locator(f"a:text-is('{name}')").wait_for()
    assert page.url == f"{server.base}/app/things/?q={q}"
    assert watched.violations() == []
    assert watched.console == [] and watched.page_errors == []


@pytest.mark.parametrize("view", ["new", "edit"])
def test_frontend_duplicate_name_marks_the_name_field(
    server: Server, watched: Watched, view: str
) -> None:
    page = watched.page
    taken = api_thing(page, server.base, f"SPA taken {free_port()}")["name"]
    if view == "new":
        path, url = "/app/things/new", "/api/things"
    else:
        other = api_thing(page, server.base, f"SPA other {free_port()}")["id"]
        path, url = f"/app/things/{other}/edit", f"/api/things/{other}"
    page.goto(server.base + path, wait_until="load")
    page.locator("form #name").wait_for()
    page.fill("#name", taken)
    page.click("button[type=submit]")
    summary = page.locator("[data-error-summary]")
    summary.wait_for()
    message = "A thing with this name already exists. Choose another name."
    assert summary.locator("a[href='#name']").inner_text() == message
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    name = page.locator("#name")
    assert "is-invalid" in (name.get_attribute("class") or "").split()
    assert name.get_attribute("aria-invalid") == "true"
    assert "name-error" in (name.get_attribute("aria-describedby") or "").split()
    assert page.locator("#name-error").inner_text() == message
    assert page.locator("#name-error").is_visible()  # Bootstrap shows it after .is-invalid
    assert page.locator("#description").get_attribute("aria-invalid") == "false"
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == [fetch_failed(409, "Conflict", server.base + url)]


def test_frontend_list_title_and_sorts_match_the_pages(server: Server, watched: Watched) -> None:
    page = watched.page
    page.goto(server.base + "/things/", wait_until="load")
    pages_sorts = page.locator("#sort option").evaluate_all("os => os.map(o => [o.value, o.text])")
    page.goto(server.base + "/app/", wait_until="load")
    page.locator("h1:text-is('Things')").wait_for()
    assert page.title() == "Things · Shipshape"
    spa_sorts = page.locator("#sort option").evaluate_all("os => os.map(o => [o.value, o.text])")
    assert spa_sorts == pages_sorts
    assert [label for _, label in spa_sorts] == [
        "Name, A to Z", "Name, Z to A", "Oldest first", "Newest first"
    ]  # fmt: skip
    assert watched.violations() == []
    assert watched.console == [] and watched.page_errors == []


def test_frontend_titles_say_which_page_and_what_failed(server: Server, watched: Watched) -> None:
    """Regression (accessibility audit, WCAG 2.4.2): a thing that is not there was titled
    "Thing", a failed load gave no sign in the title, and page 2 read as page 1."""
    page = watched.page
    name = f"SPA caption {free_port()}"
    api_thing(page, server.base, name)
    page.goto(f"{server.base}/app/?q={name.replace(' ', '+')}&sort=-created", wait_until="load")
    expect(page.locator("table caption")).to_have_text("Things, newest first")  # WCAG 1.3.1
    page.goto(server.base + "/app/?page=2", wait_until="load")
    page.locator("main table, [data-no-such-page]").first.wait_for()
    past_the_last = page.locator("[data-no-such-page]").count() == 1  # the session's data
    assert page.title() == ("Error: " if past_the_last else "") + "Things (page 2) · Shipshape"
    missing = "/app/things/00000000-0000-0000-0000-000000000000"
    for path in (missing, missing + "/edit"):
        page.goto(server.base + path, wait_until="load")
        page.locator("h1:text-is('Page not found')").wait_for()
        assert page.title() == "Page not found · Shipshape"
    page.route("**/api/things/*", lambda route: route.fulfill(status=500, json={}))
    page.goto(server.base + missing, wait_until="load")
    page.locator("[data-error-state]").wait_for()
    assert page.title() == "Error: Thing · Shipshape"
    assert watched.violations() == [] and watched.page_errors == []


# The Things pages (server-rendered forms) and the API's docs page.


FOCUS_RING = ("rgb(11, 12, 12)", "rgb(255, 191, 71)")  # the dark ring, then the yellow


@pytest.mark.parametrize(
    ("path", "selector"),
    [("/", "nav .nav-link"), ("/things/new", "#name"), ("/app/", "nav .nav-link")],
)
def test_focus_shows_a_dark_ring_inside_a_yellow_one(
    server: Server, watched: Watched, path: str, selector: str
) -> None:
    """Bootstrap's own focus styles (a pale blue shadow; none on .nav-link) are
    1.3-1.9:1 on their backgrounds: the app's ring wins on every focusable kind."""
    page = watched.page
    page.goto(server.base + path, wait_until="load")
    assert_focus_ring(page, page.locator(selector).first)


def assert_focus_ring(page: Page, target: Locator) -> None:
    target.wait_for()
    target.focus()
    page.keyboard.press("Shift+Tab")  # focus by keyboard, so :focus-visible applies
    page.keyboard.press("Tab")
    page.wait_for_timeout(300)  # Bootstrap eases a field's shadow in over 0.15 s
    style = target.evaluate(
        "e => [getComputedStyle(e).outlineColor, getComputedStyle(e).outlineStyle,"
        " getComputedStyle(e).boxShadow]"
    )
    assert style[0] == FOCUS_RING[0] and style[1] == "solid"
    assert FOCUS_RING[1] in style[2]


#: A pager and a flash's close button, as the list and a flash have them: the list
#: needs 26 things for its pager, and a flash goes after one action.
PAGER_AND_CLOSE = """main => main.insertAdjacentHTML("beforeend",
  '<ul class="pagination"><li class="page-item"><a class="page-link" href="#p">2</a></li></ul>'
  + '<div class="alert alert-dismissible"><button type="button" class="btn-close"'
  + ' aria-label="Close"></button></div>')"""


def test_pager_links_and_close_buttons_get_the_apps_focus_ring(
    server: Server, watched: Watched
) -> None:
    """Regression (accessibility audit): Bootstrap's `.page-link:focus` and
    `.btn-close:focus` outranked the app's ring, and left their pale shadow (1.4:1)."""
    page = watched.page
    page.goto(server.base + "/things/", wait_until="load")
    page.locator("main").evaluate(PAGER_AND_CLOSE)
    for selector in (".page-link", ".btn-close"):
        assert_focus_ring(page, page.locator(selector))


@pytest.mark.parametrize("path", ["/cookies", "/app/"])
def test_the_focused_skip_link_shows_above_the_navbar(
    server: Server, watched: Watched, path: str
) -> None:
    """Regression (accessibility audit): the navbar, later in the page and positioned,
    painted over the focused skip link, so a keyboard user saw nothing."""
    page = watched.page
    page.goto(server.base + path, wait_until="load")
    page.keyboard.press("Tab")
    link = page.get_by_role("link", name="Skip to main content")
    expect(link).to_be_focused()
    assert link.evaluate(
        "e => { const r = e.getBoundingClientRect();"
        " return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === e; }"
    )


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_icons_and_the_current_page_show_in_forced_colours(
    server: Server, watched: Watched, scheme: Literal["dark", "light"]
) -> None:
    """Regression (accessibility audit): in forced colours the close and menu icons,
    background images in dark ink, vanished, and the current page looked like any link."""
    page = watched.page
    page.emulate_media(forced_colors="active", color_scheme=scheme)
    page.set_viewport_size({"width": 320, "height": 640})  # the menu collapses to its button
    page.goto(server.base + "/things/", wait_until="load")
    page.locator("main").evaluate(PAGER_AND_CLOSE)
    for selector in (".btn-close", ".navbar-toggler-icon"):
        mask, paint = page.locator(selector).evaluate(
            "e => [getComputedStyle(e).maskImage, getComputedStyle(e).backgroundColor]"
        )
        assert mask.startswith('url("data:image/svg+xml'), selector
        assert paint not in ("rgba(0, 0, 0, 0)", "transparent"), selector
    current = page.locator("nav [aria-current]").first
    assert current.evaluate("e => getComputedStyle(e).fontWeight") == "700"


CONTRAST = """e => {
  const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
  let node = e, background = null;
  while (node && !background) {
    const value = getComputedStyle(node).backgroundColor;
    if (!value.startsWith("rgba(0, 0, 0, 0)") && value !== "transparent") background = value;
    node = node.parentElement;
  }
  const lum = (c) => {
    const [r, g, b] = c.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(rgb(background || "rgb(255,255,255)"))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def test_links_on_the_banner_and_the_footer_meet_aa_contrast(
    server: Server, watched: Watched
) -> None:
    page = watched.page
    page.context.clear_cookies()  # the banner shows until a choice is saved
    page.goto(server.base + "/privacy", wait_until="load")
    for selector in ("[data-cookie-banner] a:not(.btn)", "footer a"):
        links = page.locator(selector)
        assert links.count() > 0, selector
        for index in range(links.count()):
            ratio = links.nth(index).evaluate(CONTRAST)
            assert ratio >= 4.5, f"{selector} #{index}: {ratio:.2f}:1"


def test_a_long_unbroken_name_wraps_at_320_pixels(server: Server, watched: Watched) -> None:
    """WCAG 1.4.10: at 320 CSS pixels nothing scrolls sideways, whatever was typed."""
    page = watched.page
    token = page.request.get(server.base + "/api/csrf-token").json()["csrf_token"]
    name = "N" * 58 + str(free_port())[:6]
    created = page.request.post(
        server.base + "/api/things",
        data={"name": name, "description": "D" * 300},
        headers={"X-CSRF-Token": token},
    )
    assert created.status == 201, created.text()
    thing = created.json()["id"]
    page.set_viewport_size({"width": 320, "height": 640})
    paths = [
        f"/things/{thing}", f"/things/{thing}/edit", f"/things/{thing}/delete",
        "/app/", f"/app/things/{thing}", f"/app/things/{thing}/edit",
        "/things/?q=" + "W" * 60,  # regression (newcomer run): the list's status line
    ]  # fmt: skip
    for path in paths:
        page.goto(server.base + path, wait_until="load")
        page.locator("h1").first.wait_for()
        page.wait_for_timeout(100)  # the SPA's view, drawn after its chunk loads
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 320, f"{path} is {width} pixels wide"
    # The flash that names it (regression, newcomer run: 733 pixels wide).
    page.goto(f"{server.base}/things/{thing}/edit", wait_until="load")
    page.click("main form button[type=submit]")
    page.locator("[data-flash]").wait_for()
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 320, f"the flash is {width} pixels wide"


def test_things_create_edit_and_delete_through_the_forms(server: Server, watched: Watched) -> None:
    page = watched.page
    name = f"Kettle {free_port()}"  # the module's server keeps its data between tests
    page.goto(server.base + "/things/")
    page.click("text=Add a thing")
    page.wait_for_url(server.base + "/things/new")
    with page.expect_navigation() as navigation:
        page.click("main form button[type=submit]")  # a blank name (the banner has buttons too)
    invalid = navigation.value
    assert invalid is not None and invalid.status == 422
    summary = page.locator("[data-error-summary]")
    summary.wait_for()
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    assert summary.locator("a").inner_text() == "Enter a name"
    assert page.title() == "Error: Add a thing · Shipshape"

    page.fill("#name", f"  {name}  ")
    page.fill("#description", "Boils <b>water</b>.\nThen\tpours.")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/things/*-*")
    assert page.locator("h1").inner_text() == name
    assert page.locator("[role=status].alert").inner_text().strip() == f"“{name}” was added."
    # Shown as typed: its line break and tab too, not folded into spaces.
    assert page.locator("[data-description]").inner_text() == "Boils <b>water</b>.\nThen\tpours."

    page.click("text=Edit")
    page.fill("#name", name + " 2")
    page.click("main form button[type=submit]")
    page.wait_for_selector(f"h1:text-is('{name} 2')")
    assert "version 2" in page.locator("dl").inner_text()

    page.click("text=Delete")
    page.wait_for_url("**/delete")
    page.click("button.btn-danger")
    page.wait_for_url(server.base + "/things/")
    assert f"“{name} 2” was deleted." in page.locator("[role=status].alert").inner_text()
    assert page.locator(f"text={name} 2").count() == 1  # the flash only, not a row
    assert watched.violations() == []
    assert watched.console == [load_failed(invalid)] and watched.page_errors == []


def test_an_expired_form_goes_back_to_what_was_typed(server: Server, watched: Watched) -> None:
    """The refusal's "Back to the form" returns to the form refilled (a new visit would
    start blank), and a page the back-forward cache keeps gets the session's token."""
    page = watched.page
    name = f"Typed {free_port()}"
    page.goto(server.base + "/things/new")
    page.fill("#name", name)
    page.fill("#description", "Two lines\nof text")
    page.context.clear_cookies()  # the session, and the token's secret with it, has ended
    with page.expect_navigation() as navigation:
        page.click("main form button[type=submit]")
    refused = navigation.value
    assert refused is not None and refused.status == 400
    assert "Nothing was saved." in page.locator("main").inner_text()
    page.get_by_role("link", name="Back to the form").click()
    page.wait_for_selector("#name")
    assert (page.input_value("#name"), page.input_value("#description")) == (
        name,
        "Two lines\nof text",
    )
    # Kept whole, the page would still hold the ended session's token: a restored
    # page (pageshow, persisted) asks for the session's own.
    field = page.locator("main form input[name=csrf_token]")
    field.evaluate("input => { input.value = 'stale' }")
    page.evaluate("dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }))")
    expect(field).not_to_have_value("stale")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/things/*-*")
    assert page.locator("h1").inner_text() == name
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == [load_failed(refused)]


def test_the_api_docs_work_under_the_strict_csp(server: Server, watched: Watched) -> None:
    page = watched.page
    response = page.goto(server.base + "/docs", wait_until="load")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    page.locator(".opblock-summary-path", has_text="/api/things/{thing_id}").first.wait_for()
    assert page.locator(".info .title").inner_text().startswith("Shipshape Things API")
    # Regression: the page wrapped Swagger UI's own <main> in another.
    assert page.locator("main").count() == 1
    assert page.locator("header nav a[href='/']").inner_text() == "Back to Shipshape"
    # Regression (newcomer run): the skip link left focus before "Back to Shipshape".
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the API"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('swagger-ui').contains(document.activeElement)")
    page.locator(".opblock-summary", has_text="/api/csrf-token").click()
    page.click("text=Try it out")
    page.click("text=Execute")
    page.locator(".live-responses-table .response-col_status >> text=200").wait_for()
    assert watched.violations() == []
    assert watched.console == [] and watched.page_errors == []


def test_the_api_docs_meet_aa_contrast_and_show_focused_controls(
    server: Server, watched: Watched
) -> None:
    """Regression (accessibility audit): Swagger UI's method badges (2.0-3.6:1), version
    pills and links failed AA, and its "copy path" buttons took focus at zero width."""
    page = watched.page
    page.goto(server.base + "/docs", wait_until="load")
    page.locator(".opblock-summary-method").first.wait_for()
    texts = page.locator(".opblock-summary-method, .info .title small pre, .info a")
    assert texts.count() >= 8  # five operations, two pills, a link at least
    for index in range(texts.count()):
        ratio = texts.nth(index).evaluate(CONTRAST)
        assert ratio >= 4.5, f"{texts.nth(index).inner_text()!r}: {ratio:.2f}:1"
    copy = page.locator(".opblock-summary .copy-to-clipboard").first
    copy.locator("button").focus()
    page.wait_for_timeout(600)  # Swagger UI eases the width in over 0.5 s
    assert copy.evaluate("e => e.getBoundingClientRect().width") > 10
    assert watched.violations() == [] and watched.page_errors == []


def test_the_api_docs_write_with_the_session_the_browser_holds_now(
    server: Server, watched: Watched
) -> None:
    """A write from "Try it out" sends a token of the browser's current session: one read
    when the page loaded went stale when the session changed (a development reload)."""
    page = watched.page
    page.goto(server.base + "/docs", wait_until="load")
    block = page.locator(".opblock-post", has_text="/api/things").first
    block.wait_for()
    page.context.clear_cookies()  # the session the page started with is gone
    block.locator(".opblock-summary").click()
    block.locator("text=Try it out").click()
    name = f"Docs kettle {free_port()}"
    block.locator("textarea.body-param__text").fill(json.dumps({"name": name}))
    block.locator("text=Execute").click()
    block.locator(".live-responses-table .response-col_status >> text=201").wait_for()
    assert name in block.locator(".live-responses-table .microlight").first.inner_text()
    # No token to be had (limited, say): the write goes without one, and the API's
    # answer says why, where the user looks.
    page.route("**/api/csrf-token", lambda route: route.fulfill(status=429, body="{}"))
    block.locator("textarea.body-param__text").fill(json.dumps({"name": name + " 2"}))
    block.locator("text=Execute").click()
    block.locator(".live-responses-table .response-col_status >> text=400").wait_for()
    assert "csrf_failed" in block.locator(".live-responses-table .microlight").first.inner_text()
    assert watched.violations() == [] and watched.page_errors == []


def test_frontend_creates_edits_and_deletes_a_thing(server: Server, watched: Watched) -> None:
    """A deep link opened directly, a Thing made through the API, a reload of its
    deep link, then an edit and a delete: the SPA end to end."""
    page = watched.page
    name = f"SPA kettle {free_port()}"
    page.goto(server.base + "/app/things/new", wait_until="load")
    page.locator("form #name").wait_for()
    page.click("button[type=submit]")  # blank: the API's 422 becomes field errors
    page.locator("[data-error-summary]").wait_for()
    assert "Enter a name" in page.locator("[data-error-summary]").inner_text()
    page.fill("#name", name)
    page.fill("#description", "Made <i>here</i>.")
    page.click("button[type=submit]")
    page.wait_for_url("**/app/things/*-*")
    page.locator(f"h1:text-is('{name}')").wait_for()
    deep_link = page.url
    page.reload(wait_until="load")  # the deep link survives a reload
    page.locator(f"h1:text-is('{name}')").wait_for()
    assert page.locator("p.pre-wrap").inner_text() == "Made <i>here</i>."

    page.goto(server.base + "/app/?q=" + name.replace(" ", "+"), wait_until="load")
    page.locator(f"a:text-is('{name}')").wait_for()  # listed
    page.click(f"a:text-is('{name}')")
    page.wait_for_url(deep_link)
    page.click("text=Edit")
    page.locator("form #name").wait_for()
    page.fill("#name", name + " 2")
    page.click("button[type=submit]")
    page.locator(f"h1:text-is('{name} 2')").wait_for()

    # By keyboard: the question takes focus, Cancel gives it back, Tab reaches Delete.
    page.focus("text=Delete…")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.hasAttribute('data-confirm-delete')")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # Cancel
    assert page.evaluate("document.activeElement.textContent") == "Delete…"
    assert not page.locator("[data-confirm-delete]").is_visible()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.hasAttribute('data-confirm')")
    page.keyboard.press("Enter")
    page.wait_for_url(server.base + "/app/")
    page.locator("h1:text-is('Things')").wait_for()  # the list view, not the last one's
    page.locator("main .spinner-border").wait_for(state="detached")  # no eval: CSP
    assert page.locator(f"a:text-is('{name} 2')").count() == 0
    gone = page.request.get(server.base + "/api/things?q=" + name.replace(" ", "+"))
    assert gone.json()["total"] == 0
    assert watched.violations() == []
    assert watched.console == [] and watched.page_errors == []
