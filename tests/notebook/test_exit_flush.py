"""The exit flush fits in what jupyter_client allows a kernel after a shutdown request: it is
counted from the request, so the time the kernel takes to reach its exit code comes out of it.
The kernel-level check (an exit with the endpoint hanging ends with status 0, no SIGTERM) is in
test_kernel_delivery.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.notebook.extension import (
    EXIT_FLUSH_FLOOR,
    EXIT_FLUSH_SECONDS,
    Extension,
    exit_flush_seconds,
)
from tests.fakes import Clock


def test_without_a_shutdown_request_the_flush_has_all_of_its_time() -> None:
    assert exit_flush_seconds(None, 50.0) == EXIT_FLUSH_SECONDS


def test_the_time_since_the_request_comes_out_of_the_flush() -> None:
    assert exit_flush_seconds(50.0, 50.4) == pytest.approx(EXIT_FLUSH_SECONDS - 0.4)


def test_an_exit_long_after_the_request_still_waits_for_payloads_being_written() -> None:
    assert exit_flush_seconds(50.0, 60.0) == EXIT_FLUSH_FLOOR


@pytest.fixture
def extension(
    shell: Any, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Extension]:
    monkeypatch.setenv("BUGSNAG_PERSISTENCE_DIRECTORY", str(tmp_path / "persistence"))
    made = Extension(shell, monotonic=clock)
    made.install(launch=False)
    try:
        yield made
    finally:
        made.uninstall()


def flushes_at_exit(extension: Extension, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(extension.client, "shutdown", waited.append)
    extension.at_exit()
    return waited


def test_a_shutdown_request_starts_the_exit_flush_clock(
    extension: Extension, shell: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell.exit_now = True  # what ipykernel does as it answers a shutdown request
    clock.now += 0.7  # the kernel stopping its loops before the process exits
    assert flushes_at_exit(extension, monkeypatch) == [pytest.approx(EXIT_FLUSH_SECONDS - 0.7)]


def test_an_exit_without_a_request_flushes_for_the_whole_time(
    extension: Extension, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.now += 30.0
    assert flushes_at_exit(extension, monkeypatch) == [EXIT_FLUSH_SECONDS]
