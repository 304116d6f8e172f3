"""The KernelDied event, built from what a dead kernel left: a real fault dump, the rules of
its message, its frames named by cell, its exitInfo tab and its session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from bugsnag_ipython.report.cells import NotebookRef
from bugsnag_ipython.report.events import DeadCell
from bugsnag_ipython.report.kernel_death import (
    KernelDeath,
    OomEvidence,
    kernel_death_event,
    message,
    parse_fault_dump,
)

CELL_FILE = "/tmp/ipykernel_4242/3195746321.py"
HELPER_FILE = "/tmp/ipykernel_4242/1111111111.py"

_CRASH = r"""
import ctypes, faulthandler, sys, threading, time
faulthandler.enable(open(sys.argv[1], "wb", buffering=0), all_threads=True)
threading.Thread(target=time.sleep, args=(30,), name="worker", daemon=True).start()
time.sleep(0.05)
def read_nothing():
    ctypes.string_at(0)
read_nothing()
"""


def real_dump(tmp_path: Path) -> str:
    """What faulthandler writes when a process dereferences NULL."""
    script = tmp_path / "crash.py"
    script.write_text(_CRASH)
    dump = tmp_path / "faults"
    finished = subprocess.run([sys.executable, str(script), str(dump)], capture_output=True, timeout=60)
    assert finished.returncode != 0
    return dump.read_text()


def death(**changes: Any) -> KernelDeath:
    fields: dict[str, Any] = {
        "pid": 4242,
        "died_at": 1_800_000_100.0,
        "launched_at": 1_800_000_000.0,
        "cell": DeadCell(7, "crash", "import ctypes\nctypes.string_at(0)\n", 1500),
        "fault": None,
        "oom": None,
        "memory": {"residentBytes": 2_000_000_000, "at": "2027-01-15T08:01:40.000Z"},
        "facts": {"app": {"releaseStage": "staging", "version": "2.0"}, "context": None,
                  "breadcrumbs": [{"timestamp": "2027-01-15T08:00:00.000Z", "name": "In [6]",
                                   "type": "process", "metaData": {}}],
                  "kernel": {"id": "k-1"}, "metadata": {"dataset": {"rows": 3}}},
        "session": {"id": "s-1", "startedAt": "2027-01-15T08:00:00.000Z",
                    "events": {"handled": 1, "unhandled": 1}},
        "notebook": NotebookRef("analysis.ipynb", "/work"),
        "send_code": True,
        "cells": {},
    }
    fields.update(changes)
    return KernelDeath(**fields)


def test_a_real_fault_dump_is_read_thread_by_thread(tmp_path: Path) -> None:
    dump = parse_fault_dump(real_dump(tmp_path))
    assert dump is not None
    assert (dump.description, dump.signal) == ("Segmentation fault", "SIGSEGV")
    [current] = [thread for thread in dump.threads if thread.current]
    assert [method for _, _, method in current.frames] == ["string_at", "read_nothing", "<module>"]
    assert current.frames[0][0].endswith("ctypes/__init__.py")
    others = [thread for thread in dump.threads if not thread.current]
    assert others and all(thread.frames for thread in others)
    assert parse_fault_dump("") is None


def test_the_message_says_why_and_what_was_running() -> None:
    assert message(death()) == "killed while running In [7]"
    went_up = OomEvidence(before=0, after=1, cgroup_version=1)
    assert message(death(oom=went_up)) == (
        "killed while running In [7] (out of memory: the cgroup's oom_kill count went up)"
    )
    assert message(death(oom=OomEvidence(2, 2, 2))) == "killed while running In [7]"
    fault = parse_fault_dump('Fatal Python error: Aborted\n\nCurrent thread 0x1 (most recent call first):\n'
                             '  File "x.py", line 1 in <module>\n')
    assert message(death(fault=fault, cell=None)) == "aborted (SIGABRT) while idle"


def test_a_killed_cell_is_one_error_per_cell_and_cause(tmp_path: Path) -> None:
    body = kernel_death_event(death(oom=OomEvidence(0, 1, 1)), project_root="/work",
                              device={"hostname": "h"}, user={"id": "u"})
    [exception] = body["exceptions"]
    assert exception["errorClass"] == "KernelDied" and exception["stacktrace"] == []
    # Without frames BugSnag would lump every death together: the cell and cause group it.
    assert body["groupingHash"] == "KernelDied out of memory analysis.ipynb#cell-crash"
    assert body["unhandled"] is True and body["severity"] == "error"
    assert body["session"] == {"id": "s-1", "startedAt": "2027-01-15T08:00:00.000Z",
                               "events": {"handled": 1, "unhandled": 1}}
    assert body["context"] == "In [7]"
    assert body["app"] == {"type": "jupyter", "releaseStage": "staging", "version": "2.0",
                           "duration": 100_000, "durationInForeground": 1500, "inForeground": True}
    assert body["device"]["time"].startswith("2027-01-15T08:01:40")
    assert body["breadcrumbs"][0]["name"] == "In [6]"
    tabs = body["metaData"]
    assert tabs["notebook"] == {"path": "analysis.ipynb", "cellId": "crash", "executionCount": 7,
                                "cellSource": "import ctypes\nctypes.string_at(0)\n"}
    assert tabs["dataset"] == {"rows": 3} and tabs["kernel"] == {"id": "k-1", "pid": 4242}
    info = tabs["exitInfo"]
    assert info["cause"] == "out of memory" and info["importance"] == "foreground"
    assert info["oomKillCount"] == {"atStart": 0, "afterDeath": 1, "cgroupVersion": 1}
    assert info["memoryLastSeen"]["residentBytes"] == 2_000_000_000


def test_fault_frames_are_named_by_cell_and_lose_the_kernel_loop() -> None:
    ipython = "/venv/lib/python3.11/site-packages/IPython/core/interactiveshell.py"
    dump = parse_fault_dump(
        "Fatal Python error: Segmentation fault\n\n"
        "Thread 0x0000000000000002 (most recent call first):\n"
        '  File "/usr/lib/python3.11/threading.py", line 320 in wait\n\n'
        "Current thread 0x0000000000000001 (most recent call first):\n"
        '  File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at\n'
        f'  File "{HELPER_FILE}", line 2 in read_nothing\n'
        f'  File "{CELL_FILE}", line 2 in <module>\n'
        f'  File "{ipython}", line 3577 in run_code\n'
        '  File "/usr/lib/python3.11/asyncio/base_events.py", line 607 in run_forever\n'
    )
    cells = {HELPER_FILE: ["helper", 5, "def read_nothing():\n    ctypes.string_at(0)\n"]}
    body = kernel_death_event(death(fault=dump, cells=cells), project_root="/work", device={}, user={})
    frames = body["exceptions"][0]["stacktrace"]
    assert [(f["file"], f["lineNumber"], f["method"], f["inProject"]) for f in frames][1:] == [
        ("analysis.ipynb#cell-helper", 2, "read_nothing", True),
        ("analysis.ipynb#cell-crash", 2, "<module>", True),
    ]
    assert frames[1]["code"] == {"1": "def read_nothing():", "2": "    ctypes.string_at(0)"}
    assert frames[2]["code"]["2"] == "ctypes.string_at(0)"
    assert "groupingHash" not in body  # grouped by its top in-project frame, like any event
    assert body["severityReason"] == {"type": "signal", "attributes": {"signalType": "SIGSEGV"}}
    crashed = [thread for thread in body["threads"] if thread["errorReportingThread"]]
    assert len(crashed) == 1 and len(body["threads"]) == 2
    assert body["metaData"]["exitInfo"]["signal"] == "SIGSEGV"


def test_without_send_code_no_source_leaves() -> None:
    dump = parse_fault_dump(
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n"
        f'  File "{CELL_FILE}", line 2 in <module>\n'
    )
    body = kernel_death_event(death(fault=dump, send_code=False), project_root="/work", device={}, user={})
    assert "cellSource" not in body["metaData"]["notebook"]
    assert all("code" not in frame for frame in body["exceptions"][0]["stacktrace"])
    assert "string_at(0)" not in repr(body)


def test_a_cell_the_checkpoint_had_not_named_keeps_the_temp_path_out() -> None:
    dump = parse_fault_dump(
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n"
        f'  File "{HELPER_FILE}", line 2 in read_nothing\n'
        f'  File "{CELL_FILE}", line 2 in <module>\n'
    )
    body = kernel_death_event(death(fault=dump), project_root="/work", device={}, user={})
    frames = body["exceptions"][0]["stacktrace"]
    assert [(f["file"], f["inProject"]) for f in frames] == [
        ("analysis.ipynb#cell-code-1111111111", True),  # ipykernel's hash of the cell's code
        ("analysis.ipynb#cell-crash", True),
    ]
    assert "ipykernel_4242" not in repr(body)
