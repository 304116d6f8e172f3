"""What the source tests share: a client on an injected clock whose delivery is a recorder of
what it was handed, and a real in-process IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.core.config import Configuration
from tests.fakes import API_KEY, Clock, Recorder


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
