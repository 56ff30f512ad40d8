"""The example app's forms."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wtforms import Field, HiddenField, RadioField, StringField, TextAreaField

# types-WTForms still describes WTForms 3.2, which has no SelectChoice;
# WTForms 3.3 deprecates (value, label) tuples in its favour.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.form import BaseForm
from wtforms.validators import InputRequired, StopValidation, ValidationError

from app.models import DESCRIPTION_MAX, NAME_MAX
from app.things import check_description, check_name, parse_version
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


class Checked:
    """A WTForms validator that runs one of :mod:`app.things`' rules and keeps
    the value it returns (the stripped name), so the pages and the API share
    one definition of what is valid."""

    def __init__(self, rule: Callable[[str | None], str]) -> None:
        self.rule = rule
        self.field_flags = {"required": True} if rule is check_name else {}

    def __call__(self, form: BaseForm, field: Field) -> None:
        try:
            field.data = self.rule(field.data)
        except ValueError as exc:
            raise StopValidation(str(exc)) from exc


#: A browser's ``maxlength`` counts UTF-16 units, two for a character past U+FFFF (an
#: emoji), where the rules count characters: the form's bound is the most a valid value
#: can take, and the server's check says when there are too many characters.
BROWSER_UNITS = 2


class ThingForm(AsyncForm):
    name = StringField(
        "Name",
        validators=[Checked(check_name)],
        description=f"Up to {NAME_MAX} characters. No two things may share a name.",
        # No autocomplete="off": it also stops a browser from refilling the field when the
        # person comes back to the form (from an expired form's page, for one).
        render_kw={"maxlength": BROWSER_UNITS * NAME_MAX},
    )
    description = TextAreaField(
        "Description",
        # A browser sends each line break of a textarea as CR LF (HTML's form encoding),
        # where the person typed one: read as LF, as the API takes it, so that a line
        # break counts as one character against the limit, as the box counts it.
        filters=[lambda text: text.replace("\r\n", "\n") if isinstance(text, str) else text],
        validators=[Checked(check_description)],
        description=f"Optional, up to {DESCRIPTION_MAX:,} characters.",
        render_kw={"rows": 5, "maxlength": BROWSER_UNITS * DESCRIPTION_MAX},
    )
    version = HiddenField()

    def values(self) -> tuple[str, str]:
        """The checked name and description (after :meth:`validate`)."""
        return self.name.data or "", self.description.data or ""

    def seen_version(self) -> int | None:
        """The version the editor started from, or ``None`` when the field was tampered
        with: anything but the number as the form was given it (``01`` is tampered)."""
        raw = self.version.data
        return parse_version(raw) if isinstance(raw, str) else None
