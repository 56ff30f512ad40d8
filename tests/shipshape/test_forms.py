from __future__ import annotations

from quart import Quart
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from shipshape import AsyncForm
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
