"""The production layer's exception hierarchy."""

from __future__ import annotations

import click


class ShipshapeError(click.ClickException):
    """Base of every error the production layer raises at start-up.

    A :class:`click.ClickException`, so that when the app cannot start under
    Quart's own CLI (``quart --app app check --deploy`` with a bad setting),
    click prints ``Error: <the one-line message>`` instead of a traceback.
    """

    exit_code = 2  # as `python -m app` exits on a bad setting
