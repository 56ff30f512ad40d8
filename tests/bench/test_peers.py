"""The peers run on their own packages as those ship, untouched by Shipshape."""

from __future__ import annotations

import subprocess
import sys

import pytest

PEERS_RENDERING_WTFORMS = ["bench.peers.flask_template"]


@pytest.mark.parametrize("module", PEERS_RENDERING_WTFORMS)
def test_a_flask_peer_renders_with_wtforms_own_html_params(module: str) -> None:
    """Importing Shipshape would put its faster ``html_params`` into WTForms."""
    script = f"""
import sys, {module} as peer
import wtforms.widgets.core as core
page = peer.create_app()
print(core.html_params.__module__, "shipshape" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.split() == ["wtforms.widgets.core", "False"], done.stderr
