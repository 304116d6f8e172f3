"""The collector's own tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _sends_malformed(request: pytest.FixtureRequest) -> None:
    """These tests send the collector what it must refuse, on purpose."""
    request.node.add_marker(pytest.mark.sends_malformed)
