"""The example app's forms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wtforms import HiddenField, RadioField

# types-WTForms still describes WTForms 3.2, which has no SelectChoice;
# WTForms 3.3 deprecates (value, label) tuples in its favour.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.form import BaseForm
from wtforms.validators import InputRequired, StopValidation, ValidationError

from shipshape import AsyncForm

YES_NO = [SelectChoice("yes", "Yes"), SelectChoice("no", "No")]


class RequiredRadioField(RadioField):
    """A radio group that must be answered with one of its choices, with one message.

    WTForms alone keeps the saved answer checked when a submission leaves the
    field out, and words a tampered value ("Not a valid choice.") differently
    from a missing one. Here a submitted form replaces the saved answer, so a
    missing or unknown value checks no option, and both get ``message``::

        colour = RequiredRadioField("Colour?", choices=COLOURS, message="Select a colour")
    """

    def __init__(self, label: str, *, choices: Sequence[Any], message: str, **kwargs: Any) -> None:
        super().__init__(label, choices=choices, validators=[InputRequired(message)], **kwargs)
        self.message = message

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = None
        super().process_formdata(valuelist)

    def pre_validate(self, form: BaseForm) -> None:
        try:
            super().pre_validate(form)
        except ValidationError as exc:
            # Stop here, so InputRequired does not add the same message again.
            raise StopValidation(self.message) from exc


class CookiesForm(AsyncForm):
    functional = RequiredRadioField(
        "Do you want to accept functional cookies?",
        choices=YES_NO,
        message="Select yes or no for functional cookies",
        description="They remember your settings, such as this choice.",
    )
    analytics = RequiredRadioField(
        "Do you want to accept analytics cookies?",
        choices=YES_NO,
        message="Select yes or no for analytics cookies",
        description="They tell us how the site is used, so that we can improve it.",
    )


class CookieBannerForm(AsyncForm):
    """The banner's two buttons: ``choice`` is accept or reject, ``next`` the page to return to."""

    choice = RequiredRadioField(
        "Cookie choice",
        choices=[SelectChoice("accept", "Accept"), SelectChoice("reject", "Reject")],
        message="Choose accept or reject",
    )
    next = HiddenField()
