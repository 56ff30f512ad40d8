from __future__ import annotations

from typing import Any

import pytest
from jinja2 import DictLoader, Template
from quart import Quart, render_template_string
from quart import render_template as quart_render_template
from quart.signals import before_render_template, template_rendered

from shipshape import render_template
from shipshape.templating import AsyncTemplateHelperError, sync_environment
from tests.shipshape.conftest import MakeApp

TEMPLATES = {
    "macros.html": "{% macro item(x) %}<li>{{ x }}</li>{% endmacro %}",
    "base.html": "<title>{% block title %}{% endblock %}</title>{% block body %}{% endblock %}",
    "page.html": (
        '{% extends "base.html" %}{% import "macros.html" as m %}'
        "{% block title %}{{ title }}{% endblock %}"
        "{% block body %}<ul>{% for x in items %}{{ m.item(x) }}{% endfor %}</ul>"
        "{{ extra }}|{{ request.path }}|{{ csrf_field() }}{% endblock %}"
    ),
}


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    app = make_app(SHIPSHAPE_ASSETS=False, SHIPSHAPE_CSRF=False)
    app.jinja_loader = DictLoader(TEMPLATES)

    @app.context_processor
    async def extra() -> dict[str, str]:
        return {"extra": "<from a processor>"}

    return app


async def test_renders_the_bytes_quart_renders(app: Quart) -> None:
    context: dict[str, Any] = {"title": "A & B", "items": ["<x>", "y"]}
    async with app.test_request_context("/here"):
        ours = await render_template("page.html", **context)
        quarts = await quart_render_template("page.html", **context)
    assert ours == quarts
    assert "<title>A &amp; B</title><ul><li>&lt;x&gt;</li><li>y</li></ul>" in ours
    assert ours.endswith("&lt;from a processor&gt;|/here|")


async def test_first_existing_of_a_list(app: Quart) -> None:
    async with app.test_request_context("/"):
        assert await render_template(["missing.html", "macros.html"]) == ""


async def test_sends_quarts_signals(app: Quart) -> None:
    seen: list[tuple[str, str | None]] = []

    async def before(sender: Quart, template: Template, context: dict[str, Any]) -> None:
        seen.append(("before", template.name))

    async def after(sender: Quart, template: Template, context: dict[str, Any]) -> None:
        seen.append(("after", template.name))

    with (
        before_render_template.connected_to(before, app),
        template_rendered.connected_to(after, app),
    ):
        async with app.test_request_context("/"):
            await render_template("macros.html")
    assert seen == [("before", "macros.html"), ("after", "macros.html")]


async def test_the_sync_environment_is_kept_and_shares_globals(app: Quart) -> None:
    async with app.test_request_context("/"):
        # Quart's environment already holds an async-compiled template: not copied.
        await render_template_string("x")
        await quart_render_template("macros.html")
        env = sync_environment(app)
        assert sync_environment(app) is env
        assert not env.is_async and app.jinja_env.is_async
        app.add_template_global(lambda: "late", "late")
        assert env.from_string("{{ late() }}").render() == "late"
        await render_template("macros.html")


async def test_no_cache_when_the_app_keeps_none(app: Quart) -> None:
    app.jinja_env.cache = None  # what Jinja's cache_size=0 makes
    assert sync_environment(app).cache is None


async def test_an_async_template_global_stops_start_up(app: Quart) -> None:
    """Rendered synchronously it would print <coroutine object ...> into the page."""

    @app.template_global()
    async def fetched() -> str:
        return "awaited"

    with pytest.raises(AsyncTemplateHelperError, match="template global 'fetched' is async"):
        await app.startup()


async def test_a_bytecode_cache_is_not_shared_with_the_async_environment(app: Quart) -> None:
    from jinja2 import BytecodeCache

    class Remembering(BytecodeCache):
        def load_bytecode(self, bucket: Any) -> None:
            return None

        def dump_bytecode(self, bucket: Any) -> None:
            return None

    app.jinja_env.bytecode_cache = Remembering()
    assert sync_environment(app).bytecode_cache is None
