"""Real kernels whose persistence directory has no room: full when the kernel starts (it runs
without a crash record and says so once), and filled while it runs (its record's space was
reserved, so the checkpoints go on). Either way cells run and errors reach the collector."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.deaths.record import DamagedRecord, RecordContents, read_record
from tests.conftest import StartKernel
from tests.mounts import FILL, fill, free_bytes, needs_root, small_tmpfs
from tests.waits import eventually

WAIT = 30.0
PANEL_SETTINGS = (  # the live panel's Settings column, as its widget holds it in the kernel
    "[w.value for w in list(__import__('ipywidgets').widgets.widget._instances.values())"
    " if str(getattr(w, 'value', '')).startswith(\"<div style='font-weight:bold'>Settings\")]"
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: room for the record (about 260 KB) and the outbox, until it is filled.
    Unmounted after the kernels are gone (requested before start_kernel, it ends after it)."""
    with small_tmpfs(tmp_path / "disk", "4m") as mounted:
        yield mounted


@needs_root
def test_a_kernel_started_on_a_full_disk_runs_without_a_crash_record_and_says_so_once(
    small_disk: Path, start_kernel: StartKernel, collector: Any
) -> None:
    fill(small_disk / "filler")
    kernel = start_kernel(BUGSNAG_PERSISTENCE_DIRECTORY=str(small_disk))
    sentence = (f"Kernel deaths are not recorded: the persistence directory {small_disk} has no room "
                "for the crash record (No space left on device); free space or set "
                "BUGSNAG_PERSISTENCE_DIRECTORY to another directory.")

    def status() -> str | None:  # the record is made (or not) in the background after the load
        shown = kernel.execute("%bugsnag_session status")
        assert shown.status == "ok", shown.traceback
        return shown.stdout if "Kernel deaths" in shown.stdout else None

    lines = eventually(status, WAIT)
    assert lines, f"the status never named the missing record within {WAIT} s"
    assert f"Problem: {sentence}" in lines.splitlines()
    assert kernel.execute("total = sum(range(10))\nprint(total)").stdout == "45\n"
    failed = kernel.execute("1/0")
    assert failed.error_name == "ZeroDivisionError"
    assert collector.wait_for("events", 1, WAIT)  # from memory: the outbox has no room either
    assert [event.error_class for event in collector.store.events()] == ["ZeroDivisionError"]

    panel = kernel.execute("%bugsnag_session")
    assert panel.status == "ok" and any(sentence in data.get("text/plain", "") for data in panel.data)
    [settings] = kernel.evaluate(PANEL_SETTINGS)
    assert html.escape(sentence) in settings

    assert kernel.alive
    assert kernel.log().count(sentence) == 1
    assert list((small_disk / "kernels").iterdir()) == []  # no record, temp or fault file


def live_record(folder: Path) -> RecordContents | None:
    """The record in `folder`, read from outside the kernel as the next kernel would read it."""
    for path in folder.glob("*.record"):
        try:
            return read_record(path.read_bytes())
        except (OSError, DamagedRecord):
            continue
    return None


@needs_root
def test_a_disk_that_fills_while_the_kernel_runs_does_not_kill_it(
    small_disk: Path, start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(BUGSNAG_PERSISTENCE_DIRECTORY=str(small_disk))
    kernels = small_disk / "kernels"
    first = eventually(lambda: (record := live_record(kernels)) is not None and record.facts, WAIT)
    assert first, f"no first checkpoint within {WAIT} s"

    filled = kernel.execute(FILL.format(path=str(small_disk / "filler")))
    assert filled.status == "ok", filled.traceback
    assert free_bytes(small_disk) == 0
    # A document of 60 KB: the next checkpoint stores into pages of the record never written
    # before, which on a full disk need the blocks reserved at the start.
    grown = kernel.execute("import bugsnag_ipython\n"
                           "bugsnag_ipython.add_metadata('large', {'blob': 'x' * 60_000})")
    assert grown.status == "ok", grown.traceback

    seen: list[float] = []

    def checkpointed() -> bool:
        record = live_record(kernels)
        if record is not None and record.vitals is not None and record.vitals.seen_monotonic not in seen:
            seen.append(record.vitals.seen_monotonic)
        return len(seen) > 5  # the first one seen, then five more

    assert eventually(checkpointed, WAIT), f"not five checkpoints on the full disk within {WAIT} s"
    record = live_record(kernels)
    assert record is not None and record.facts["metadata"]["large"]["blob"] == "x" * 60_000
    assert kernel.alive

    failed = kernel.execute("raise KeyError('after the disk filled')")
    assert failed.error_name == "KeyError"
    assert collector.wait_for("events", 1, WAIT)
    assert [event.error_class for event in collector.store.events()] == ["KeyError"]
    assert kernel.alive and free_bytes(small_disk) == 0
