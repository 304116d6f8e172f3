"""What the source tests share: a client on an injected clock whose delivery is a recorder of
what it was handed (the in-process shell is tests/conftest.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.core.config import Configuration
from tests.fakes import Clock, Recorder
from tests.payloads import API_KEY


@pytest.fixture
def client(tmp_path: Path, recorder: Recorder, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    config = Configuration().replace(
        api_key=API_KEY,
        notify_endpoint="http://127.0.0.1:9/notify",
        sessions_endpoint="http://127.0.0.1:9/sessions",
        persistence_directory=str(tmp_path / "persistence"),
        background_timeout=30.0,
        watch_kernel_deaths=False,  # no process of its own in these: tests/test_kernel_watcher.py
    )
    made = Client(config, delivery=recorder, monotonic=clock, wall_clock=clock)  # type: ignore[arg-type]
    made.launch(in_background=True)
    made.send_launch_session()
    return made

