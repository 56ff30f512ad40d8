"""The example app's forms."""

from __future__ import annotations

from wtforms import RadioField
from wtforms.validators import InputRequired

from shipshape import AsyncForm

YES_NO = [("yes", "Yes"), ("no", "No")]


class CookiesForm(AsyncForm):
    functional = RadioField(
        "Do you want to accept functional cookies?",
        choices=YES_NO,
        validators=[InputRequired("Select yes or no for functional cookies")],
        description="They remember your settings, such as this choice.",
    )
    analytics = RadioField(
        "Do you want to accept analytics cookies?",
        choices=YES_NO,
        validators=[InputRequired("Select yes or no for analytics cookies")],
        description="They tell us how the site is used, so that we can improve it.",
    )
