"""A crash record whose space cannot be reserved: the kernel runs without one, nothing is
mapped or left behind, and one sentence says why, in the log, status and the panel."""

from __future__ import annotations

import errno
import faulthandler
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.deaths.kernel_deaths import KernelDeaths
from bugsnag_ipython.deaths.place import NoRecord
from bugsnag_ipython.deaths.record import SIZE, CrashRecord
from bugsnag_ipython.delivery.delivery import Delivery
from bugsnag_ipython.delivery.payload import Outcome, Payload
from bugsnag_ipython.notebook.status import panel_view, status_text
from tests.mounts import fill, needs_root, small_tmpfs
from tests.payloads import API_KEY


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with room for a few pages, not for a record."""
    assert SIZE > 64 * 1024
    with small_tmpfs(tmp_path / "tiny", "64k") as mounted:
        yield mounted


def no_room_sentence(directory: Path) -> str:
    return (f"Kernel deaths are not recorded: the persistence directory {directory} has no room for "
            "the crash record (No space left on device); free space or set "
            "BUGSNAG_PERSISTENCE_DIRECTORY to another directory.")


@needs_root
def test_a_record_without_room_is_refused_and_leaves_nothing(tiny: Path) -> None:
    with pytest.raises(NoRecord) as refused:
        CrashRecord(tiny, launched_wall=time.time(), launched_monotonic=time.monotonic())
    assert str(refused.value) == no_room_sentence(tiny)
    assert list((tiny / "kernels").iterdir()) == []  # neither the record nor its hidden temp
    assert os.statvfs(tiny).f_bfree == os.statvfs(tiny).f_blocks  # no block kept either


class Endpoint:
    """A transport that accepts everything and keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[Payload] = []

    def send(self, payload: Payload) -> Outcome:
        self.sent.append(payload)
        return Outcome(202)

    def close(self) -> None:
        pass


@needs_root
def test_a_kernel_without_room_runs_without_a_record_and_says_so_once(
    tiny: Path, shell: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fill(tiny / "filler")  # the outbox has no room either: payloads are kept in memory
    endpoint = Endpoint()
    config = Configuration().replace(api_key=API_KEY, persistence_directory=str(tiny))
    client = Client(config, delivery=Delivery(lambda: endpoint))
    handler_before = faulthandler.is_enabled()
    deaths = KernelDeaths(client, shell, None, interval=0.01)
    deaths.install()
    try:
        assert deaths.scanned.wait(10), "the record's thread never finished"
        sentence = no_room_sentence(tiny)
        assert deaths.record is None and deaths.problem == sentence
        assert client.problems == [sentence]
        assert f"Problem: {sentence}" in status_text(client).splitlines()
        view = panel_view(client, None, wall_clock=time.time(), monotonic=time.monotonic())
        assert ("Problem", sentence) in view.settings
        assert [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()] == [sentence]
        assert list((tiny / "kernels").iterdir()) == []  # no record, no temp, no fault file
        assert faulthandler.is_enabled() == handler_before
        client.notify(ValueError("still reported"))  # everything else works
        assert client.flush(10)
        assert [e.kind for e in endpoint.sent] == ["event"]
    finally:
        deaths.uninstall()
    assert client.problems == []  # unloaded: no longer a problem of this kernel's

    deaths.install()  # %reload_ext: the same cause is said again in status, not in the log
    try:
        assert deaths.scanned.wait(10)
        assert client.problems == [no_room_sentence(tiny)]
        assert len([r for r in caplog.records if "not recorded" in r.getMessage()]) == 1
    finally:
        deaths.uninstall()
        client.shutdown(0)


@pytest.mark.parametrize(("code", "says"), [
    (errno.EDQUOT, "has no room for the crash record (Disk quota exceeded); free space or set "
                   "BUGSNAG_PERSISTENCE_DIRECTORY to another directory."),
    (errno.EOPNOTSUPP, "cannot reserve the crash record's space (Operation not supported); set "
                       "BUGSNAG_PERSISTENCE_DIRECTORY to a directory on a local disk."),
])
def test_a_quota_or_a_filesystem_that_reserves_nothing_is_said_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, says: str
) -> None:
    """As a quota or such a filesystem answers posix_fallocate (neither is at hand here)."""
    def refuse(fd: int, offset: int, length: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "posix_fallocate", refuse)
    with pytest.raises(NoRecord) as refused:
        CrashRecord(tmp_path, launched_wall=time.time(), launched_monotonic=time.monotonic())
    where = f"the persistence directory {tmp_path}"
    assert str(refused.value) == f"Kernel deaths are not recorded: {where} {says}"
    assert list((tmp_path / "kernels").iterdir()) == []
