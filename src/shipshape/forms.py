"""WTForms bound to Quart's async request data.

WTForms is synchronous and reads ``formdata`` in its constructor, while
Quart's ``request.form`` must be awaited. :meth:`AsyncForm.from_request`
awaits it first. CSRF is checked app-wide by :mod:`shipshape.csrf` before the
view runs, so forms carry no CSRF field logic of their own; the Bootstrap
macros in ``shipshape/forms.html`` render the hidden token field::

    form = await CookiesForm.from_request(data=saved)
    if form.validate_on_submit():
        ...
"""

from __future__ import annotations

from typing import Any, Self

import wtforms
from quart import request

SUBMIT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AsyncForm(wtforms.Form):
    """A WTForms form that fills itself from the current Quart request."""

    @classmethod
    async def from_request(cls, **kwargs: Any) -> Self:
        """Build the form from the submitted body, or from ``data``/``obj`` on GET."""
        formdata = await request.form if request.method in SUBMIT_METHODS else None
        return cls(formdata=formdata, **kwargs)

    @staticmethod
    def is_submitted() -> bool:
        return request.method in SUBMIT_METHODS

    def validate_on_submit(self) -> bool:
        return self.is_submitted() and self.validate()
