"""The dead-kernel scan trusts nothing in `kernels/`: files that only bear a record's name, damaged
records and records of another version, each dealt with on its own, beside a genuine death
that is still reported once, read back from the real local collector; the kernel-level cases
are tests/test_kernel_record_trust.py."""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.deaths.record import CrashRecord
from bugsnag_ipython.deaths.scan import report_dead_kernels
from bugsnag_ipython.notebook.status import status_text
from tests.deaths.conftest import received
from tests.records import damaged, kernels, left_dead, other_version, token_name


def set_aside(directory: Path) -> list[str]:
    folder = kernels(directory) / "set-aside"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_a_fifo_and_a_link_to_dev_zero_are_set_aside_unread_and_the_death_beside_them_reported(
    tmp_path: Path, reporter: Any, collector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, own = reporter
    genuine = left_dead(tmp_path, source="train()")
    fifo = kernels(tmp_path) / token_name()
    os.mkfifo(fifo)
    (kernels(tmp_path) / token_name()).symlink_to("/dev/zero")
    with caplog.at_level(logging.WARNING, logger="bugsnag_ipython"):
        assert len(report_dead_kernels(client, str(tmp_path), own)) == 1  # returns: nothing waited on
    [death] = received(client, collector)
    assert death["metaData"]["notebook"]["cellSource"] == "train()"
    assert not genuine.exists()
    assert [path.name for path in kernels(tmp_path).glob("*.record")] == [own.path.name]
    # Both kept as they were, for a look: the FIFO and the link itself (not what it points to).
    kept = [os.lstat(path).st_mode for path in (kernels(tmp_path) / "set-aside").iterdir()]
    assert sorted(map(stat.S_IFMT, kept)) == sorted([stat.S_IFIFO, stat.S_IFLNK])
    assert client.crash_records.set_aside == 2
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 2 and all(line.startswith("Set aside the crash record") for line in said)
    assert any("symbolic link" in line for line in said)
    assert any("not a regular file" in line for line in said)
    assert "Kernel deaths: 2 crash records of earlier kernels could not be used" in status_text(client)


def test_a_damaged_record_is_set_aside_the_genuine_one_reported_once_and_neither_retried(
    tmp_path: Path, reporter: Any, collector: Any
) -> None:
    client, own = reporter
    bad = damaged(tmp_path)
    left_dead(tmp_path)
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 1
    assert len(received(client, collector)) == 1
    [aside] = set_aside(tmp_path)
    assert aside.endswith(bad.name.replace(".record", f".{own.token}.claimed"))
    later = CrashRecord(tmp_path, launched_wall=time.time(), launched_monotonic=time.monotonic())
    try:
        assert len(report_dead_kernels(client, str(tmp_path), later)) == 0
        assert len(received(client, collector)) == 1 and set_aside(tmp_path) == [aside]
        assert list(kernels(tmp_path).glob("*.claimed")) == []
    finally:
        later.close(remove=True)


def test_any_error_reading_one_record_sets_that_one_aside_and_the_others_are_reported(
    tmp_path: Path, reporter: Any, collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a record makes the reader raise (here OverflowError, as a garbage time does
    where it becomes a date), it alone is set aside."""
    from bugsnag_ipython.deaths import scan

    client, own = reporter
    left_dead(tmp_path, source="first()")
    left_dead(tmp_path, source="second()")
    real = scan.death_of
    calls = []

    def fails_once(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise OverflowError("timestamp out of range for platform time_t")
        return real(*args)

    monkeypatch.setattr(scan, "death_of", fails_once)
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 1
    assert len(received(client, collector)) == 1 and len(set_aside(tmp_path)) == 1
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 0  # not tried again


@pytest.mark.parametrize("magic, size", [(b"BSGKREC2", None), (b"BSGKREC1", 4096)])
def test_a_record_of_another_version_is_left_in_place_with_its_fault_file(
    tmp_path: Path, reporter: Any, collector: Any, magic: bytes, size: int | None
) -> None:
    client, own = reporter
    path = other_version(tmp_path, magic, **({"size": size} if size else {}))
    faults = path.with_suffix(".faults")
    faults.write_text("Fatal Python error: Segmentation fault\n")
    old = time.time() - 7200  # older than any leftover is kept
    os.utime(faults, (old, old))
    before = path.read_bytes()
    for _ in range(2):
        assert len(report_dead_kernels(client, str(tmp_path), own)) == 0
    assert path.read_bytes() == before and faults.exists()
    assert received(client, collector) == [] and set_aside(tmp_path) == []


def test_a_file_that_is_no_record_of_any_version_is_set_aside(tmp_path: Path, reporter: Any,
                                                              collector: Any) -> None:
    client, own = reporter
    (kernels(tmp_path) / token_name()).write_bytes(b"not a record at all")
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 0
    assert len(set_aside(tmp_path)) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file another user's needs root")
def test_a_record_of_another_user_is_set_aside_unread(tmp_path: Path, reporter: Any, collector: Any) -> None:
    client, own = reporter
    planted = left_dead(tmp_path)
    os.chown(planted, 65534, 65534)
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 0
    assert received(client, collector) == [] and len(set_aside(tmp_path)) == 1


def test_a_record_whose_fault_file_is_a_fifo_is_set_aside_with_it_unread(
    tmp_path: Path, reporter: Any, collector: Any
) -> None:
    client, own = reporter
    record = left_dead(tmp_path)
    os.mkfifo(record.with_suffix(".faults"))
    left_dead(tmp_path, source="the_other()")
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 1
    [death] = received(client, collector)
    assert death["metaData"]["notebook"]["cellSource"] == "the_other()"
    assert len(set_aside(tmp_path)) == 2  # the record and its fault file, together
