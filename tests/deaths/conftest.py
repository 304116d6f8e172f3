"""What the kernel-death tests share: a reporting client whose events reach the real local
collector, with a live crash record of its own, and the events the collector received."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.deaths.record import CrashRecord
from tests.payloads import API_KEY


def sending_client(collector: Any, directory: Path) -> Client:
    """A client that sends to `collector`, keeping its files in `directory`."""
    return Client(Configuration(api_key=API_KEY, notify_endpoint=collector.notify_url,
                                sessions_endpoint=collector.sessions_url,
                                persistence_directory=str(directory)))


@pytest.fixture
def reporter(tmp_path: Path, collector: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Client, CrashRecord]]:
    """A client that sends to the collector, and a live record of its own."""
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    client = sending_client(collector, tmp_path)
    own = CrashRecord(tmp_path, launched_wall=time.time(), launched_monotonic=time.monotonic())
    yield client, own
    own.close(remove=True)
    client.shutdown(0)


def received(client: Client, collector: Any) -> list[dict[str, Any]]:
    """The events the collector received, oldest first, once `client` delivered all it had."""
    assert client.flush(10), "the client's payloads were not delivered"
    return [stored.event for stored in collector.store.events()]
