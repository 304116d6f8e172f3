"""Stand-ins the in-process client tests share: an injected clock, and a recorder of what the
client hands to delivery."""

from __future__ import annotations

import json
from typing import Any

import pytest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Stands in for Delivery: keeps the payloads it is handed."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.envelopes: list[Any] = []

    def submit(self, envelope: Any) -> None:
        self.envelopes.append(envelope)

    def reconfigure(self, config: Any) -> None:
        pass  # where payloads are stored is not what these tests are about

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(e.body)["events"][0] for e in self.envelopes if e.kind == "event"]

    def sessions(self) -> list[str]:
        return [json.loads(e.body)["sessions"][0]["id"] for e in self.envelopes if e.kind == "session"]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> Clock:
    return Clock()
