"""What the source tests share: a client on an injected clock whose delivery is a recorder of
what it was handed, and a real in-process IPython shell."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.config import Configuration

API_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Stands in for Delivery: keeps the envelopes it is handed."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.envelopes: list[Any] = []

    def submit(self, envelope: Any) -> None:
        self.envelopes.append(envelope)

    def reconfigure(self, config: Any) -> None:
        pass

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


@pytest.fixture
def client(tmp_path: Path, recorder: Recorder, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    config = Configuration().replace(
        api_key=API_KEY,
        notify_endpoint="http://127.0.0.1:9/notify",
        sessions_endpoint="http://127.0.0.1:9/sessions",
        persistence_directory=str(tmp_path / "persistence"),
        background_timeout=30.0,
    )
    made = Client(config, delivery=recorder, monotonic=clock, wall_clock=clock)  # type: ignore[arg-type]
    made.launch(in_background=True)
    made.send_launch_session()
    return made


@pytest.fixture
def shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    made = InteractiveShell.instance()
    try:
        yield made
    finally:
        InteractiveShell.clear_instance()
