"""The example app's forms."""

from __future__ import annotations

from wtforms import HiddenField, RadioField

# types-WTForms still describes WTForms 3.2, which has no SelectChoice;
# WTForms 3.3 deprecates (value, label) tuples in its favour.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import InputRequired

from shipshape import AsyncForm

YES_NO = [SelectChoice("yes", "Yes"), SelectChoice("no", "No")]


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


class CookieBannerForm(AsyncForm):
    """The banner's two buttons: ``choice`` is accept or reject, ``next`` the page to return to."""

    choice = RadioField(
        "Cookie choice",
        choices=[SelectChoice("accept", "Accept"), SelectChoice("reject", "Reject")],
        validators=[InputRequired("Choose accept or reject")],
    )
    next = HiddenField()
