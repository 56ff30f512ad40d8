"""The single-page frontend at /app, between views: conflicts, chunks and abandoned requests.

A tester found: an edit conflict named only the other person's name, so "Keep mine"
replaced a description the user never saw; recovering from a missing chunk always
logged a 404 of its own (a HEAD of the page's address, which a fetch is answered 404);
the requests of a view the user had left ran on, and were sent again after a 429,
on a rate limit of 2 a second; while a view's chunk downloaded, the old view stayed,
clickable, with no sign that anything was happening.
"""

from __future__ import annotations

from playwright.sync_api import Request, Route, expect

from tests.e2e import test_browser
from tests.e2e.conftest import Server
from tests.e2e.test_browser import Watched, api_thing, api_write, fetch_failed
from tests.servers import free_port

# test_browser's fixtures: its production server over HTTPS, one Chromium, a watched page.
server = test_browser.server
browser = test_browser.browser
watched = test_browser.watched

RATE_LIMITED = {"error": 429, "code": "rate_limited", "message": "Too many requests."}


def title(heading: str, failed: bool = False) -> str:
    return ("Error: " if failed else "") + f"{heading} · Things · Shipshape"


def test_an_edit_conflict_shows_their_whole_version(server: Server, watched: Watched) -> None:
    """Regression: the 409 said "Their version is named …" and no more, so the user could
    not see that someone else had changed the description, which "Keep mine" replaces."""
    page = watched.page
    name = f"SPA their description {free_port()}"
    thing = api_thing(page, server.base, name)
    url = f"{server.base}/api/things/{thing['id']}"
    page.goto(f"{server.base}/app/things/{thing['id']}/edit", wait_until="load")
    page.locator("#name").wait_for()
    expect(page).to_have_title(title(f"Edit {name}"))
    theirs = "Their words, which mine would replace."
    assert api_write(page, "PUT", url, name=name, description=theirs, version=1).status == 200

    page.fill("#description", "Mine.")
    page.click("main form button[type=submit]")
    conflict = page.locator("[data-conflict]")
    expect(conflict.locator("dt")).to_have_text(["Name", "Description", "Version"])
    expect(conflict.locator("dd")).to_have_text([name, theirs, "2"])
    expect(page).to_have_title(title(f"Edit {name}", failed=True))  # WCAG 2.4.2
    expect(page.locator("#description")).to_have_value("Mine.")  # still in the form

    page.get_by_role("button", name="Load their version").click()
    expect(page.locator("#description")).to_have_value(theirs)
    expect(page).to_have_title(title(f"Edit {name}"))  # answered: no error now
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == [fetch_failed(409, "Conflict", url)]


def test_a_missing_chunk_is_recovered_with_no_error_but_its_own(
    server: Server, watched: Watched
) -> None:
    """Regression: asking whether the server answers, the page sent a HEAD to its own
    address; a fetch is not a navigation, so the app answered 404, which Chromium logs."""
    page = watched.page
    gone: list[str] = []

    def gone_once(route: Route) -> None:  # a deploy: the old index's chunk, then the new
        if gone:
            route.continue_()
        else:
            gone.append(route.request.url)
            route.fulfill(status=404, body="gone")

    page.route("**/app/assets/form-*.js", gone_once)
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    page.goto(server.base + "/app/", wait_until="load")
    page.locator("h1:text-is('Things')").wait_for()
    page.click("text=New thing")
    page.locator("form #name").wait_for()
    assert loads == [server.base + "/app/", server.base + "/app/things/new"], "one reload"
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == [fetch_failed(404, "Not Found", gone[0])]


def test_leaving_a_view_aborts_its_request(server: Server, watched: Watched) -> None:
    """Regression: a view the user had left kept its request, which went on using the
    rate limit; now the next navigation aborts it, and the view it left says nothing."""
    page = watched.page
    name = f"SPA abandoned {free_port()}"
    thing = api_thing(page, server.base, name)
    page.goto(f"{server.base}/app/things/{thing['id']}", wait_until="load")
    page.locator(f"h1:text-is('{name}')").wait_for()
    list_url = server.base + "/api/things?sort=name"
    held: list[Route] = []
    page.route(list_url, lambda route: held.append(route))  # a slow server: never answered

    with page.expect_request(list_url):
        page.get_by_role("link", name="All things").click()
    expect(page.locator("h1")).to_have_text("Things")

    def aborted(request: Request) -> bool:
        return request.url == list_url

    with page.expect_event("requestfailed", aborted, timeout=5000) as failed:
        page.go_back()  # before the list came
    assert failed.value.failure == "net::ERR_ABORTED"
    expect(page.locator("h1")).to_have_text(name)  # the view the user is on, with its data
    expect(page.locator("main")).to_contain_text("No description.")
    expect(page.locator("[data-error-state]")).to_have_count(0)
    assert len(held) == 1, "not sent again"
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == []


def test_a_view_left_while_it_waits_out_a_429_sends_nothing_more(
    server: Server, watched: Watched
) -> None:
    """Regression: the view the user had left sent its request again after the 429's
    Retry-After, and then drew its thing over the list the user had gone back to."""
    page = watched.page
    name = f"SPA abandoned 429 {free_port()}"
    thing = api_thing(page, server.base, name)
    url = f"{server.base}/api/things/{thing['id']}"
    gets: list[str] = []

    def refuse_first(route: Route) -> None:
        gets.append(route.request.method)
        if len(gets) > 1:
            route.continue_()
            return
        headers = {"Retry-After": "1", "Content-Type": "application/json"}
        route.fulfill(status=429, headers=headers, json=RATE_LIMITED)

    page.goto(f"{server.base}/app/?q={name.replace(' ', '+')}", wait_until="load")
    link = page.locator(f"main a:text-is('{name}')")
    link.wait_for()
    page.route(url, refuse_first)
    with page.expect_response(url):
        link.click()
    page.go_back()  # within the second the SPA would wait
    link.wait_for()
    page.wait_for_timeout(1500)  # past the Retry-After
    assert gets == ["GET"], "not sent again"
    expect(page.locator("h1")).to_have_text("Things")
    expect(page.locator("[data-error-state]")).to_have_count(0)
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == [fetch_failed(429, "Too Many Requests", url)]


def test_main_is_busy_while_a_views_chunk_downloads(server: Server, watched: Watched) -> None:
    """Regression: for the chunk's download time the old view stayed, and the link that
    was followed gave no sign of it."""
    page = watched.page
    page.goto(server.base + "/app/things/new", wait_until="load")
    page.locator("form #name").wait_for()
    held: list[Route] = []
    page.route("**/app/assets/list-*.js", lambda route: held.append(route))  # a slow network

    with page.expect_request("**/app/assets/list-*.js"):
        page.get_by_role("link", name="Cancel").click()
    main = page.locator("main")
    expect(main).to_have_attribute("aria-busy", "true")
    expect(main.locator("form")).to_have_count(0)  # the old view is gone, not clickable
    status = main.get_by_role("status")
    expect(status).to_have_text("Loading…")
    expect(status).to_be_focused()  # in place of the link that had focus

    held[0].continue_()
    expect(main.locator("h1")).to_have_text("Things")
    expect(main.locator("h1")).to_be_focused()
    page.locator("main .spinner-border").wait_for(state="detached")  # the list's data too
    assert main.get_attribute("aria-busy") is None
    assert watched.violations() == [] and watched.page_errors == []
    assert watched.console == []
