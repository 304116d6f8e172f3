"""Which dead kernels are reported, and how: records left by processes killed here, reported by
a client to the real local collector, where the event itself is read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.core.private_files import create_locked
from bugsnag_ipython.deaths.kernel_deaths import KernelDeaths
from bugsnag_ipython.deaths.record import CrashRecord, read_record
from bugsnag_ipython.deaths.scan import report_dead_kernels
from tests.deaths.conftest import received
from tests.waits import eventually

ROOT = str(Path(__file__).resolve().parents[2])
SESSION = "0f1e2d3c-1111-4222-8333-444455556666"

_DYING = r"""
import os, sys, time
sys.path.insert(0, {root!r})
from bugsnag_ipython.core.sessions import SessionSnapshot
from bugsnag_ipython.deaths.record import CrashRecord
from bugsnag_ipython.report.events import CellRun
record = CrashRecord({directory!r}, launched_wall=time.time() - 60, launched_monotonic=time.monotonic() - 60)
record.session(SessionSnapshot({session!r}, 1_800_000_000.0, 2, 0, {paused}), sending={sending})
if {running}:
    record.cell_started(CellRun(7, "train", "model.fit(data)", time.monotonic() - 5))
record.vitals(seen_monotonic=time.monotonic(), seen_wall=time.time(), rss=123_456_789,
              peak_rss=223_456_789, cgroup_usage=-1, cgroup_limit=-1)  # last seen
if {ended}:
    record.mark_ended()
record.faults_path.write_text({fault!r})
record.document({document!r})
os.write(1, b"ready\n")
time.sleep(60)
"""

SEGFAULT = (
    "Fatal Python error: Segmentation fault\n\nCurrent thread 0x0000000000000001 (most recent call first):\n"
    '  File "/tmp/ipykernel_77/123.py", line 1 in <module>\n'
)


def dead_kernel(directory: Path, *, running: bool = True, sending: bool = True, ended: bool = False,
                fault: str = "", paused: bool = False, document: bytes = b"{}") -> None:
    """A process that keeps a record as told, then is killed with SIGKILL."""
    code = _DYING.format(root=ROOT, directory=str(directory), running=running, sending=sending,
                         ended=ended, fault=fault, session=SESSION, paused=paused, document=document)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def test_a_kernel_killed_in_a_cell_is_one_event_of_its_session(tmp_path: Path, reporter: Any,
                                                               collector: Any) -> None:
    client, own = reporter
    dead_kernel(tmp_path)
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 1
    [event] = received(client, collector)
    assert event["exceptions"][0]["errorClass"] == "KernelDied"
    assert event["session"]["id"] == SESSION
    assert event["session"]["events"] == {"handled": 2, "unhandled": 1}
    assert event["metaData"]["notebook"]["cellSource"] == "model.fit(data)"
    assert 4900 <= event["app"]["durationInForeground"] <= 6000  # to when it was last seen
    assert event["metaData"]["exitInfo"]["memoryLastSeen"]["peakResidentBytes"] == 223_456_789
    assert client.tracker.counts.sessions_with_unhandled == 0  # this kernel's counts never move
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 0  # reported once, then gone
    assert [p.name for p in (tmp_path / "kernels").iterdir()] == [own.path.name]


def test_a_kernel_killed_while_making_a_file_leaves_nothing_for_long(tmp_path: Path, reporter: Any) -> None:
    """A hidden record half made and a fault dump whose record is gone, an hour old, are removed
    by the next kernel's scan; a live kernel's fault dump and the record it is making stay."""
    client, own = reporter
    folder = tmp_path / "kernels"
    live = CrashRecord(tmp_path, launched_wall=time.time(), launched_monotonic=time.monotonic())
    making = create_locked(folder / ".0123456789ab.record.tmp")
    try:
        stale = [folder / ".ba9876543210.record.tmp", folder / "ba9876543210.faults"]
        for path in [*stale, live.faults_path]:
            path.write_bytes(b"\0" * 1024)
            os.utime(path, (time.time() - 7200, time.time() - 7200))
        assert report_dead_kernels(client, str(tmp_path), own) == []
        assert not any(path.exists() for path in stale)
        assert live.faults_path.exists() and (folder / ".0123456789ab.record.tmp").exists()
    finally:
        os.close(making)
        live.close(remove=True)


@pytest.mark.parametrize(
    "left",
    [
        {"ended": True},  # a shutdown request or exit had begun
        {"running": False},  # idle, and no fault: a reboot, a culler, a kill of an idle kernel
        {"sending": False},  # no API key: it sent nothing while it lived
        {"ended": True, "fault": SEGFAULT},  # a crash after the end began is the end's
    ],
)
def test_what_is_not_a_reported_death(tmp_path: Path, reporter: Any, collector: Any,
                                   left: dict[str, Any]) -> None:
    client, own = reporter
    dead_kernel(tmp_path, **left)
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 0
    assert received(client, collector) == []
    assert len(list((tmp_path / "kernels").glob("*.claimed"))) == 0  # removed all the same


def test_a_fatal_signal_while_idle_is_reported(tmp_path: Path, reporter: Any, collector: Any) -> None:
    client, own = reporter
    dead_kernel(tmp_path, running=False, fault=SEGFAULT)
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 1
    [event] = received(client, collector)
    assert event["exceptions"][0]["message"] == "segmentation fault (SIGSEGV) while idle"
    assert event["app"]["inForeground"] is False


def test_a_paused_session_is_not_counted(tmp_path: Path, reporter: Any, collector: Any) -> None:
    client, own = reporter
    dead_kernel(tmp_path, paused=True)
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 1
    [event] = received(client, collector)
    assert "session" not in event


def test_an_on_error_callback_sees_the_death_and_may_drop_it(tmp_path: Path, reporter: Any,
                                                             collector: Any) -> None:
    client, own = reporter
    seen: list[str] = []

    def drop(event: dict[str, Any]) -> bool:
        seen.append(event["exceptions"][0]["errorClass"])
        return False

    client.on_error.add(drop)
    dead_kernel(tmp_path)
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 0
    assert seen == ["KernelDied"] and received(client, collector) == []


def test_an_oom_kill_count_that_went_up_says_out_of_memory(tmp_path: Path, reporter: Any,
                                                           collector: Any) -> None:
    client, own = reporter
    counter = tmp_path / "cgroup" / "memory.oom_control"
    counter.parent.mkdir()
    counter.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    baseline = {"oomKill": {"file": str(counter), "count": 0, "cgroupVersion": 1}}
    dead_kernel(tmp_path, document=json.dumps(baseline).encode())
    counter.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")  # the OOM killer acted
    assert len(report_dead_kernels(client, str(tmp_path), own)) == 1
    [event] = received(client, collector)
    assert event["exceptions"][0]["message"] == (
        "killed while running In [7] (out of memory: the cgroup's oom_kill count went up)"
    )
    counts = event["metaData"]["exitInfo"]["oomKillCount"]
    assert counts == {"atStart": 0, "afterDeath": 1, "cgroupVersion": 1}
    assert event["groupingHash"] == "KernelDied out of memory cell-train"


def test_a_shutdown_request_before_the_record_is_made_still_marks_it_ended(reporter: Any,
                                                                          shell: Any) -> None:
    """The record is made in the background after the load: a frontend's restart that comes
    first (a shutdown request sets exit_now, then the busy kernel is killed) is still a normal
    end, not a death, once the record is there."""
    client, _ = reporter
    deaths = KernelDeaths(client, shell, None)
    shell.exit_now = True  # the shutdown request, before any record of this kernel's is made
    deaths.install()
    try:
        assert eventually(lambda: deaths.record is not None), "the record was never made"
        assert deaths.record is not None and read_record(deaths.record.path.read_bytes()).ended
    finally:
        deaths.uninstall()


def recording_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "bugsnag-crash-record"]


def test_an_exit_during_a_checkpoint_waits_for_it(reporter: Any, shell: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The kernel exits while the checkpoint thread is writing the record: the exit waits for
    the write, so the user sees no warning that the record could not be updated, and the
    record is gone as after any normal end."""
    client, _ = reporter
    deaths = KernelDeaths(client, shell, None, interval=0.01)
    deaths.install()
    try:
        assert eventually(lambda: deaths.record is not None), "the record was never made"
        record = deaths.record
        assert record is not None
        path, real = record.path, record.vitals
        writing, tried = threading.Event(), threading.Event()

        def slow_vitals(**facts: Any) -> None:  # the exit comes in the middle of the checkpoint
            writing.set()
            time.sleep(0.2)
            try:
                real(**facts)
            finally:
                tried.set()

        record.vitals = slow_vitals  # type: ignore[method-assign]
        assert writing.wait(10)
        deaths.at_exit()
    finally:
        deaths.uninstall()
    assert tried.wait(10)
    assert eventually(lambda: not recording_threads())  # it logs a failed write before it ends
    assert not [r.getMessage() for r in caplog.records if "could not be updated" in r.getMessage()]
    assert not path.exists()
