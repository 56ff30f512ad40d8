"""The example app with brotli at level 4 (Flask-Compress's default) instead of Shipshape's 3.

Run beside ``shipshape`` so that the cost of the one level the two stacks
disagree on is measured in the server, where it counts (``bench/levels.py``).
"""

from __future__ import annotations

from quart import Quart

from app import create_app as create_example_app
from shipshape.compression import DYNAMIC_LEVELS


def create_app() -> Quart:
    return create_example_app({"SHIPSHAPE_COMPRESSION_LEVELS": {**DYNAMIC_LEVELS, "br": 4}})
