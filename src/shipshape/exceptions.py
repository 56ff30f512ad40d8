"""The production layer's exception hierarchy."""

from __future__ import annotations


class ShipshapeError(Exception):
    """Base of every error the production layer raises at start-up."""
