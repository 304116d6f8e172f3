"""Real kernels meeting a persistence directory they must not trust: another user's directory
holding a planted record, a FIFO and a link to /dev/zero named as records, a damaged record
beside a genuine one, and a record of another version. What a user would notice: the kernel
works (its own record kept current, its errors delivered), nothing false is reported, every
genuine death is reported once, and one sentence says what was refused."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartKernel
from tests.kernel import Kernel
from tests.records import (
    damaged,
    kernels,
    left_dead,
    other_version,
    read_whole,
    regular_records,
    token_name,
)
from tests.test_kernel_deaths import WAIT, deaths, kill_in_cell, scanned
from tests.waits import eventually

NOBODY = 65534
SEGFAULT = (
    "Fatal Python error: Segmentation fault\n\nCurrent thread 0x0000000000000001 (most recent call first):\n"
    '  File "/tmp/ipykernel_77/123.py", line 1 in <module>\n'
)


def snapshot(root: Path) -> dict[str, tuple[int, ...]]:
    """Every path under `root` with what writing (or, where the mount keeps access times,
    reading) it would change."""
    found: dict[str, tuple[int, ...]] = {}
    for path in [root, *root.rglob("*")]:
        facts = os.lstat(path)
        read = facts.st_atime_ns if stat.S_ISREG(facts.st_mode) else 0
        found[str(path.relative_to(root))] = (facts.st_mode, facts.st_uid, facts.st_size,
                                              facts.st_mtime_ns, read)
    return found


def own_vitals(kernel: Kernel, persistence: Path) -> float | None:
    """When the kernel's own record last saw it alive, as the file says now."""
    pid = kernel.manager.provisioner.pid
    for path in regular_records(persistence):
        contents = read_whole(path)
        if contents is not None and contents.pid == pid and contents.vitals is not None:
            return contents.vitals.seen_monotonic
    return None


def peak_rss_kb(kernel: Kernel) -> int:
    return int(kernel.evaluate("__import__('resource').getrusage(__import__('resource').RUSAGE_SELF)"
                               ".ru_maxrss"))


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user's needs root")
def test_another_users_open_directory_with_a_planted_record_is_neither_read_nor_written(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    planted = left_dead(shared, source="steal(api_key)")  # sending on, a cell running
    planted.with_suffix(".faults").write_text(SEGFAULT)
    for path in [shared, *shared.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    os.chmod(shared, 0o777)
    os.chmod(kernels(shared), 0o777)
    before = snapshot(shared)

    kernel = start_kernel(BUGSNAG_PERSISTENCE_DIRECTORY=str(shared))
    assert kernel.execute("1/0").status == "error"
    scanned(kernel)  # its errors delivered from memory
    assert [event.error_class for event in collector.store.events()] == ["ZeroDivisionError"]
    assert snapshot(shared) == before  # no record, fault file, outbox or device id; nothing read
    sentence = (f"The persistence directory {shared} belongs to another user, so nothing is "
                "stored or read there")
    status = kernel.execute("%bugsnag_session status").stdout
    assert [line for line in status.splitlines() if sentence in line] == [f"Problem: {sentence}: payloads "
            "are kept in memory only (lost if the kernel dies before they are sent), kernel deaths are "
            "not recorded, and the device id lasts one kernel; set BUGSNAG_PERSISTENCE_DIRECTORY to a "
            "directory of your own."]
    assert kernel.log().count(sentence) == 1  # one cause, one line
    assert "kernel deaths cannot be recorded" not in kernel.log()


def test_a_fifo_and_a_link_to_dev_zero_named_as_records_neither_stall_nor_swell_the_kernel(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    persistence = tmp_path / "outbox"  # the kernels' persistence directory
    genuine = left_dead(persistence, source="after_the_bad_ones()")
    genuine.rename(genuine.with_name("ffffffffffff.record"))  # looked at after both
    os.mkfifo(kernels(persistence) / token_name())
    (kernels(persistence) / token_name()).symlink_to("/dev/zero")

    kernel = start_kernel(load=False)
    peak_before = peak_rss_kb(kernel)
    assert kernel.execute("%load_ext bugsnag_ipython").status == "ok"
    # Its own record keeps being written: the vitals move on disk over three checkpoints.
    seen: list[float] = []

    def moved_on() -> bool:
        now = own_vitals(kernel, persistence)
        if now is not None and (not seen or now > seen[-1]):
            seen.append(now)
        return len(seen) == 4

    assert eventually(moved_on, WAIT), f"the record stopped being updated: {seen}"
    scanned(kernel)
    [death] = deaths(collector)  # the scan went past both and reported the genuine one
    assert death.event["metaData"]["notebook"]["cellSource"] == "after_the_bad_ones()"
    growth = peak_rss_kb(kernel) - peak_before
    assert growth < 64 * 1024, f"the kernel's peak memory grew by {growth} KB"
    aside = kernels(persistence) / "set-aside"
    assert sorted(stat.S_IFMT(os.lstat(path).st_mode) for path in aside.iterdir()) == sorted(
        [stat.S_IFIFO, stat.S_IFLNK])
    [own] = regular_records(persistence)
    left = {path.name for path in kernels(persistence).iterdir()}
    assert left == {own.name, own.with_suffix(".faults").name, "set-aside"}  # its own, nothing else
    status = kernel.execute("%bugsnag_session status").stdout
    assert (f"Kernel deaths: 2 crash records of earlier kernels could not be used and were set aside "
            f"into {aside}") in status

    kill_in_cell(kernel, "import time\ntime.sleep(60)")  # a later genuine death
    scanned(start_kernel())
    assert len(deaths(collector)) == 2


def test_a_damaged_record_beside_a_genuine_one_is_set_aside_and_never_retried(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    persistence = tmp_path / "outbox"
    bad = damaged(persistence)
    left_dead(persistence, source="genuine()")
    first = start_kernel()
    scanned(first)
    [death] = deaths(collector)
    assert death.event["metaData"]["notebook"]["cellSource"] == "genuine()"
    aside = kernels(persistence) / "set-aside"
    [kept] = [path.name for path in aside.iterdir()]
    assert kept.endswith(".claimed") and bad.name.removesuffix(".record") in kept
    assert "Set aside the crash record" in first.log() and "holds values no kernel writes" in first.log()

    second = start_kernel()
    scanned(second)
    assert len(deaths(collector)) == 1
    assert [path.name for path in aside.iterdir()] == [kept]
    assert list(kernels(persistence).glob("*.claimed*")) == []
    assert "Set aside" not in second.log()


def test_a_record_of_another_version_is_left_alone_by_two_kernels(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    persistence = tmp_path / "outbox"
    newer = other_version(persistence, b"BSGKREC2")
    faults = newer.with_suffix(".faults")
    faults.write_text(SEGFAULT)
    old = time.time() - 7200  # older than any leftover fault file is kept
    os.utime(faults, (old, old))
    before = (newer.read_bytes(), faults.read_bytes())
    for _ in range(2):
        scanned(start_kernel())
    assert (newer.read_bytes(), faults.read_bytes()) == before
    assert deaths(collector) == []
    assert not (kernels(persistence) / "set-aside").exists()


def said_once(kernel: Kernel, collector: Any, why: str) -> None:
    """The kernel works from memory, and says why in one line and one problem."""
    assert kernel.execute("1/0").status == "error"
    scanned(kernel)  # the outbox, the crash record and the device id have all met it
    assert [event.error_class for event in collector.store.events()] == ["ZeroDivisionError"]
    said = [line for line in kernel.log().splitlines() if "[bugsnag_ipython]" in line]
    assert len(said) == 1 and why in said[0], said
    problems = [line for line in kernel.execute("%bugsnag_session status").stdout.splitlines()
                if line.startswith("Problem:")]
    assert len(problems) == 1 and why in problems[0], problems


def test_a_persistence_directory_that_cannot_be_used_is_said_once_in_one_sentence(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    kernel = start_kernel(BUGSNAG_PERSISTENCE_DIRECTORY=str(blocker / "p"))
    said_once(kernel, collector,
              f"The persistence directory {blocker / 'p'} cannot be used (Not a directory)")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only file system, as a persistence directory some setups mount."""
    mount = tmp_path / "read-only"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system needs root")
def test_a_read_only_persistence_directory_is_said_once_in_one_sentence(
    start_kernel: StartKernel, collector: Any, read_only: Path
) -> None:
    kernel = start_kernel(BUGSNAG_PERSISTENCE_DIRECTORY=str(read_only))
    said_once(kernel, collector,
              f"The persistence directory {read_only} cannot be used (it is not writable)")
