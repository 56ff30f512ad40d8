"""The single-page frontend at /app keeps focus somewhere meaningful, never on <body>.

An accessibility audit found: "Keep mine, save over theirs" saved nothing; focus fell to
<body> when an in-place action removed the control that had it ("Try again", a failed
delete, the answers to a conflict); a message after a write was a live region drawn
already filled, which a screen reader does not announce (the server pages focus it);
the delete confirmation did not close on Escape.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e import test_browser
from tests.e2e.conftest import Server
from tests.e2e.test_browser import Watched, api_thing, api_write
from tests.servers import free_port

# test_browser's fixtures: its production server over HTTPS, one Chromium, a watched page.
server = test_browser.server
browser = test_browser.browser
watched = test_browser.watched

ERROR = {"error": 500, "code": "error", "message": "Internal Server Error"}


def fail_first(count: int, status: int = 500) -> tuple[list[str], Any]:
    """A route handler answering `status` to its first `count` requests, then the app."""
    seen: list[str] = []

    def handle(route: Route) -> None:
        seen.append(route.request.method)
        if len(seen) <= count:
            route.fulfill(status=status, json={**ERROR, "error": status})
        else:
            route.continue_()

    return seen, handle


def open_thing(page: Page, base: str, name: str, edit: bool = False) -> dict[str, Any]:
    thing = api_thing(page, base, name)
    page.goto(f"{base}/app/things/{thing['id']}" + ("/edit" if edit else ""), wait_until="load")
    page.locator("#name" if edit else f"h1:text-is('{name}')").wait_for()
    return thing


def edit_conflict(page: Page, base: str, name: str, description: str = "") -> str:
    """A thing open in the edit form, changed by someone else meanwhile (version 2, their
    name), then saved with this person's name: the conflict shows. The thing's API URL."""
    thing = open_thing(page, base, name, edit=True)
    url = f"{base}/api/things/{thing['id']}"
    assert api_write(page, "PUT", url, name=name + " theirs", version=1).status == 200
    page.fill("#name", name + " mine")
    if description:
        page.fill("#description", description)
    page.click("main form button[type=submit]")
    page.locator("[data-conflict]").wait_for()
    return url


def test_keep_mine_saves_over_theirs_and_says_so(server: Server, watched: Watched) -> None:
    """Regression: the button only removed the question; nothing was sent or saved."""
    page = watched.page
    name = f"SPA keep mine {free_port()}"
    url = edit_conflict(page, server.base, name, "mine too")
    with page.expect_request(lambda r: r.method == "PUT" and r.url == url) as put:
        page.get_by_role("button", name="Keep mine, save over theirs").click()
    assert put.value.post_data_json == {
        "name": name + " mine",
        "description": "mine too",
        "version": 2,  # theirs: the version the person chose to replace
    }
    page.locator(f"h1:text-is('{name} mine')").wait_for()
    assert page.url == url.replace("/api/", "/app/")
    flash = page.locator("[data-flash]")
    expect(flash).to_have_text(f"“{name} mine” was saved.")
    expect(flash).to_be_focused()
    saved = page.request.get(url).json()
    assert (saved["name"], saved["description"], saved["version"]) == (
        name + " mine",
        "mine too",
        3,
    )
    assert watched.violations() == [] and watched.page_errors == []


def test_keep_mine_that_fails_focuses_the_error(server: Server, watched: Watched) -> None:
    page = watched.page
    name = f"SPA keep mine fails {free_port()}"
    url = edit_conflict(page, server.base, name)

    seen, handle = fail_first(1)
    page.route(url, lambda r: handle(r) if r.request.method == "PUT" else r.continue_())
    page.get_by_role("button", name="Keep mine, save over theirs").click()
    state = page.locator("[data-error-state]")
    expect(state).to_contain_text("The server had a problem (500)")
    expect(state).to_be_focused()
    assert seen == ["PUT"]
    assert page.request.get(url).json()["name"] == name + " theirs"
    assert watched.violations() == [] and watched.page_errors == []


def test_load_their_version_focuses_the_form(server: Server, watched: Watched) -> None:
    page = watched.page
    name = f"SPA load theirs {free_port()}"
    edit_conflict(page, server.base, name)

    page.get_by_role("button", name="Load their version").click()
    expect(page.locator("[data-conflict]")).to_have_count(0)
    expect(page.locator("#name")).to_be_focused()
    expect(page.locator("#name")).to_have_value(name + " theirs")
    assert watched.violations() == [] and watched.page_errors == []


def test_list_try_again_focuses_the_error_then_the_results(
    server: Server, watched: Watched
) -> None:
    page = watched.page
    name = f"SPA list retry {free_port()}"
    api_thing(page, server.base, name)
    seen, handle = fail_first(2)
    page.route("**/api/things?*", handle)
    page.goto(f"{server.base}/app/?q={name.replace(' ', '+')}", wait_until="load")
    page.locator("[data-error-state]").wait_for()

    page.get_by_role("button", name="Try again").click()  # fails again
    expect(page.locator("[data-error-state]")).to_be_focused()
    page.get_by_role("button", name="Try again").click()
    page.locator(f"a:text-is('{name}')").wait_for()
    expect(page.locator("main p[role=status]")).to_be_focused()
    expect(page.locator("main p[role=status]")).to_have_text(
        f"Showing 1–1 of 1 thing with a name containing “{name}”."
    )
    assert seen == ["GET"] * 3
    assert watched.violations() == [] and watched.page_errors == []


def test_detail_try_again_focuses_the_new_heading(server: Server, watched: Watched) -> None:
    page = watched.page
    name = f"SPA detail retry {free_port()}"
    thing = api_thing(page, server.base, name)
    seen, handle = fail_first(1, status=503)
    page.route(f"**/api/things/{thing['id']}", handle)
    page.goto(f"{server.base}/app/things/{thing['id']}", wait_until="load")
    page.locator("[data-error-state]").wait_for()

    page.get_by_role("button", name="Try again").click()
    heading = page.locator(f"h1:text-is('{name}')")
    heading.wait_for()
    expect(heading).to_be_focused()
    assert seen == ["GET", "GET"]
    assert watched.violations() == [] and watched.page_errors == []


@pytest.mark.parametrize("failure", ["500", "429", "offline"])
def test_failed_delete_focuses_the_error(server: Server, watched: Watched, failure: str) -> None:
    """Regression: the question holding the focused Delete was hidden, and the error
    block had no tabindex, so its .focus() did nothing: focus fell to <body>."""
    page = watched.page
    name = f"SPA delete {failure} {free_port()}"
    thing = open_thing(page, server.base, name)
    url = f"{server.base}/api/things/{thing['id']}"

    def refuse(route: Route) -> None:
        if route.request.method != "DELETE":
            route.continue_()
        elif failure == "offline":
            route.abort("connectionrefused")
        else:  # a 429 with no Retry-After: the SPA does not wait and send it again
            route.fulfill(status=int(failure), json={**ERROR, "error": int(failure)})

    page.route(url, refuse)
    page.click("text=Delete…")
    page.click("[data-confirm]")
    state = page.locator("[data-error-state]")
    state.wait_for()
    expect(state).to_be_focused()
    expect(page.locator("[data-confirm-delete]")).to_be_hidden()
    assert page.request.get(url).status == 200, "not deleted"
    assert watched.violations() == [] and watched.page_errors == []


def test_show_the_new_version_focuses_its_heading(server: Server, watched: Watched) -> None:
    page = watched.page
    name = f"SPA show new {free_port()}"
    thing = open_thing(page, server.base, name)
    url = f"{server.base}/api/things/{thing['id']}"
    assert api_write(page, "PUT", url, name=name + " renamed", version=1).status == 200
    page.click("text=Delete…")
    page.click("[data-confirm]")
    page.locator("[data-conflict]").wait_for()

    page.get_by_role("button", name="Show the new version").click()
    heading = page.locator(f"h1:text-is('{name} renamed')")
    heading.wait_for()
    expect(heading).to_be_focused()
    assert watched.violations() == [] and watched.page_errors == []


def test_the_message_after_a_write_takes_focus(server: Server, watched: Watched) -> None:
    """As the server pages do: a status drawn already filled, with the view around it,
    is not announced, so the message is focused instead of the heading."""
    page = watched.page
    name = f"SPA focus flash {free_port()}"
    page.goto(server.base + "/app/things/new", wait_until="load")
    page.fill("#name", name)
    page.click("main form button[type=submit]")
    page.locator(f"h1:text-is('{name}')").wait_for()
    flash = page.locator("[data-flash]")
    expect(flash).to_have_text(f"“{name}” was added.")
    expect(flash).to_be_focused()

    page.click("text=Delete…")
    page.click("[data-confirm]")
    page.locator("h1:text-is('Things')").wait_for()
    expect(flash).to_have_text(f"“{name}” was deleted.")
    expect(flash).to_be_focused()

    page.click("text=Add a thing")  # no write: the heading, as before
    heading = page.locator("h1:text-is('Add a thing')")
    heading.wait_for()
    expect(heading).to_be_focused()
    assert watched.violations() == [] and watched.page_errors == []


def test_escape_closes_the_delete_question(server: Server, watched: Watched) -> None:
    page = watched.page
    name = f"SPA escape {free_port()}"
    thing = open_thing(page, server.base, name)
    page.focus("text=Delete…")
    page.keyboard.press("Enter")
    question = page.locator("[data-confirm-delete]")
    expect(question).to_be_focused()
    page.keyboard.press("Escape")
    expect(question).to_be_hidden()
    expect(page.get_by_role("button", name="Delete…")).to_be_focused()

    page.keyboard.press("Enter")  # again, from its Delete button this time
    page.keyboard.press("Tab")
    expect(page.locator("[data-confirm]")).to_be_focused()
    page.keyboard.press("Escape")
    expect(question).to_be_hidden()
    expect(page.get_by_role("button", name="Delete…")).to_be_focused()
    assert page.request.get(f"{server.base}/api/things/{thing['id']}").status == 200
    assert watched.violations() == [] and watched.page_errors == []
