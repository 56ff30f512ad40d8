from __future__ import annotations

import subprocess
import sys

import pytest
import wtforms
import wtforms.widgets
import wtforms.widgets.core
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup
from quart import Quart
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import InputRequired, Length

from shipshape import AsyncForm, forms
from shipshape.forms import html_params
from tests.shipshape.conftest import MakeApp


class NameForm(AsyncForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=5)])


async def test_get_uses_data_and_is_not_submitted(make_app: MakeApp) -> None:
    app: Quart = make_app(SHIPSHAPE_ASSETS=False)
    async with app.test_request_context("/", method="GET"):
        form = await NameForm.from_request(data={"name": "Ada"})
        assert form.name.data == "Ada"
        assert not form.is_submitted()
        assert not form.validate_on_submit()


async def test_post_reads_the_awaited_body(make_app: MakeApp) -> None:
    app: Quart = make_app(SHIPSHAPE_ASSETS=False)
    async with app.test_request_context("/", method="POST", form={"name": "toolongname"}):
        form = await NameForm.from_request(data={"name": "ignored"})
        assert form.name.data == "toolongname"
        assert form.is_submitted()
        assert not form.validate_on_submit()
        assert form.errors == {"name": ["Field cannot be longer than 5 characters."]}
    async with app.test_request_context("/", method="POST", form={"name": "Ada"}):
        assert (await NameForm.from_request()).validate_on_submit()


# html_params: WTForms' own output, faster, installed where WTForms looks it up.


class Html:
    """An object that renders itself as HTML, as WTForms' values may."""

    def __init__(self, html: str) -> None:
        self.html = html

    def __html__(self) -> str:
        return self.html

    def __str__(self) -> str:
        return f'"{self.html}"'


HOSTILE_TEXT = st.text(alphabet=st.sampled_from("ab_-<>&\"'= \x00é\u2028{}"), max_size=8)
NAMES = st.one_of(
    HOSTILE_TEXT,
    st.tuples(st.sampled_from(["data_", "aria_", "", "class", "for"]), HOSTILE_TEXT).map("".join),
    HOSTILE_TEXT.map(Markup),
)
VALUES = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(),
    st.floats(),
    HOSTILE_TEXT,
    HOSTILE_TEXT.map(Markup),
    HOSTILE_TEXT.map(Html),
)


@given(st.dictionaries(NAMES, VALUES, max_size=6))
def test_html_params_writes_what_wtforms_writes(attributes: dict[str, object]) -> None:
    assert html_params(**attributes) == forms._wtforms_html_params(**attributes)
    assert type(html_params(**attributes)) is Markup


def test_html_params_escapes_names_and_values() -> None:
    assert html_params(value='"><script>', title=Markup('a "b" <i>'), class_="x", off=False) == (
        'class="x" title="a &quot;b&quot; <i>" value="&#34;&gt;&lt;script&gt;"'
    )
    assert html_params(**{"a<b": True, "data_x_y": 1}) == 'a&lt;b data-x-y="1"'


def test_wtforms_widgets_and_labels_use_it() -> None:
    assert wtforms.widgets.core.html_params is html_params
    assert wtforms.widgets.html_params is html_params
    assert wtforms.widgets.core.Input.html_params is html_params
    assert wtforms.widgets.core.Button.html_params is html_params  # type: ignore[attr-defined]


class EveryWidgetForm(wtforms.Form):
    text = StringField("Text <b>", validators=[InputRequired(), Length(max=5)])
    choice = RadioField(
        "Choice", choices=[SelectChoice("a", 'A "1"'), SelectChoice("<b>", "B")], default="<b>"
    )
    pick = SelectField(
        "Pick",
        choices=[SelectChoice("x", "X"), SelectChoice("y", "Y")],
        render_kw={"data_role": "p"},
    )
    notes = TextAreaField("Notes", default='</textarea><script>"')
    agree = BooleanField("Agree", default=True)
    secret = PasswordField("Secret")
    hidden = HiddenField(default='"&')
    send = SubmitField("Send")


def render_every_widget() -> list[str]:
    form = EveryWidgetForm(data={"text": '"><img src=x>'})
    rendered = []
    for field in form:
        rendered += [str(field(class_="c", aria_describedby="h")), str(field.label(class_="l"))]
        if isinstance(field, RadioField):
            rendered += [str(option()) + str(option.label()) for option in field]
    return rendered


def test_widgets_render_the_same_as_with_wtforms_own(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = render_every_widget()
    own = forms._wtforms_html_params
    monkeypatch.setattr(wtforms.widgets.core, "html_params", own)
    monkeypatch.setattr(wtforms.widgets, "html_params", own)
    monkeypatch.setattr(wtforms.widgets.core.Input, "html_params", staticmethod(own))
    monkeypatch.setattr(wtforms.widgets.core.Button, "html_params", staticmethod(own))  # type: ignore[attr-defined]
    assert render_every_widget() == ours
    assert any('aria-describedby="h"' in html and "&#34;&gt;&lt;img" in html for html in ours)


def test_a_wtforms_that_writes_otherwise_keeps_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    def different(**attributes: object) -> Markup:
        return Markup(" ".join(sorted(attributes)))  # noqa: S704 (a test's stand-in)

    different.__module__ = "wtforms.widgets.core"  # as a later WTForms' own would be

    monkeypatch.setattr(forms, "_wtforms_html_params", different)
    monkeypatch.setattr(wtforms.widgets.core, "html_params", different)
    monkeypatch.setattr(wtforms.widgets.core.Input, "html_params", staticmethod(different))
    forms._install_html_params()
    assert wtforms.widgets.core.html_params is different
    assert wtforms.widgets.core.Input.html_params is different


def test_a_projects_own_html_params_set_before_import_is_kept() -> None:
    script = """
import wtforms.widgets, wtforms.widgets.core as core
def mine(**attributes):
    return "mine"
core.html_params = wtforms.widgets.html_params = mine
import shipshape.forms
assert core.html_params is mine and wtforms.widgets.html_params is mine
assert core.Input.html_params is shipshape.forms.html_params  # WTForms' own, still in place
print("kept")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "kept", done.stderr


def test_a_name_is_escaped_as_its_own_type_whichever_comes_first() -> None:
    """Names are escaped once and kept; a Markup name is not served a str's escaping."""
    for first, second in ((Markup("a&b"), "a&b"), ("c&d", Markup("c&d"))):
        for name in (first, second, first):
            assert html_params(**{name: "v"}) == forms._wtforms_html_params(**{name: "v"})
    assert html_params(**{Markup("a&b"): "v"}) == 'a&b="v"'
    assert html_params(**{"a&b": "v"}) == 'a&amp;b="v"'
