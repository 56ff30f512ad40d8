"""Tiny inline apps for unit tests of the production layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quart import Quart

from shipshape import Shipshape

MakeApp = Callable[..., Quart]


@pytest.fixture
def make_app(tmp_path: Any) -> MakeApp:
    def factory(**config: Any) -> Quart:
        app = Quart(__name__, static_folder=None)
        app.config.update({"APP_ENV": "testing", "SHIPSHAPE_ASSET_DIR": str(tmp_path), **config})
        Shipshape(app)
        return app

    return factory
