"""Shipshape: a production layer for Quart apps.

::

    from quart import Quart
    from shipshape import Shipshape

    app = Quart(__name__)
    Shipshape(app)
"""

from __future__ import annotations

from shipshape.config import ConfigError, Settings, environ_config
from shipshape.csrf import csrf_exempt
from shipshape.exceptions import ShipshapeError
from shipshape.extension import Shipshape
from shipshape.forms import AsyncForm
from shipshape.templating import render_template

__all__ = [
    "AsyncForm",
    "ConfigError",
    "Settings",
    "Shipshape",
    "ShipshapeError",
    "csrf_exempt",
    "environ_config",
    "render_template",
]
