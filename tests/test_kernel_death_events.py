"""What a dead kernel's event carries at the edges, read back from the real collector: a
segfault with deep stacks in many threads (the event fits BugSnag's limit, the crashing
thread whole), and a kernel moved into a memory-limited cgroup while it ran, then OOM-killed
there (the event has the OOM evidence)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bugsnag_ipython.report.kernel_death import parse_fault_dump
from tests.cgroups import LIMIT_BYTES
from tests.conftest import StartKernel
from tests.test_kernel_deaths import WAIT, deaths, named, recording, scanned, start_cell, until, wait_dead

BODY_LIMIT = 1_000_000  # bytes, BugSnag's


def padded(code: str) -> str:
    """Every line of `code` made 200 characters long by a comment (the longest line a code
    window keeps), so that each frame's window is as large as a window gets."""
    return "\n".join(f"{line}  # {'x' * (196 - len(line))}" if line.strip() else line
                     for line in code.splitlines())


PARKED_THREADS = padded("""
import threading
parked = threading.Barrier(11)
never = threading.Event()
def dive(depth):
    if depth:
        return dive(depth - 1)
    parked.wait()
    never.wait()
workers = [threading.Thread(target=dive, args=(150,), daemon=True) for _ in range(10)]
for worker in workers:
    worker.start()
""")

CRASH = padded("""
import ctypes
def crash(depth):
    if depth:
        return crash(depth - 1)
    return ctypes.string_at(0)
parked.wait()
crash(150)
""")


def test_a_segfault_with_deep_stacks_in_ten_threads_fits_and_keeps_the_crashing_thread_whole(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = recording(start_kernel())
    assert first.execute(PARKED_THREADS, cell_id="workers").status == "ok"
    named(first, "workers")  # its frames then have code windows
    start_cell(first, CRASH, cell_id="crash", wait=False)
    wait_dead(first)
    [faults] = (first.root.parent / "outbox" / "kernels").glob("*.faults")
    dump = parse_fault_dump(faults.read_text())
    assert dump is not None and dump.signal == "SIGSEGV"
    [written] = [thread.frames for thread in dump.threads if thread.current]
    deep = [thread for thread in dump.threads if len(thread.frames) == 100]
    assert len(written) == 100 and len(deep) == 11  # faulthandler writes 100 frames at most

    start_kernel()
    assert collector.wait_for("events", 1, WAIT)
    [death] = deaths(collector)
    [request] = collector.store.requests("events")
    assert request.status == 202 and len(request.body.encode()) < BODY_LIMIT
    body = death.event
    [crashed] = [thread for thread in body["threads"] if thread["errorReportingThread"]]
    frames = crashed["stacktrace"]
    # Every frame faulthandler wrote for it, innermost first, each with its code window.
    assert [(f["method"], f["lineNumber"]) for f in frames] == [(m, n) for _, n, m in written]
    assert frames[0]["file"] == "ctypes/__init__.py" and frames[0]["method"] == "string_at"
    assert {f["file"] for f in frames[1:]} == {"cell-crash"} and all("code" in f for f in frames[1:])
    assert body["exceptions"][0]["stacktrace"] == frames
    # The other threads are all there, the deep ones with every frame, some without windows.
    others = [thread for thread in body["threads"] if not thread["errorReportingThread"]]
    parked = [thread for thread in others if any(f["method"] == "dive" for f in thread["stacktrace"])]
    assert len(others) == len(dump.threads) - 1 and len(parked) == 10
    assert all(len(thread["stacktrace"]) == 100 for thread in parked)
    assert any("code" not in f for thread in parked for f in thread["stacktrace"] if f["method"] == "dive")


def test_a_kernel_moved_into_a_memory_limited_cgroup_and_oom_killed_there_is_reported_out_of_memory(
    start_kernel: StartKernel, collector: Any, limited_cgroup: Path
) -> None:
    first = recording(start_kernel())
    pid = first.evaluate("__import__('os').getpid()")
    (limited_cgroup / "cgroup.procs").write_text(str(pid))  # as a limit put on a running kernel
    counter = str(limited_cgroup / "memory.oom_control")
    until(first, lambda record: (record.facts.get("oomKill") or {}).get("file") == counter,
          "the new cgroup's counter")
    # Not waited on: the OOM killer may end the kernel before its "started" leaves it.
    start_cell(first, "hog = bytearray(1 << 30)", cell_id="hog", wait=False)
    wait_dead(first)
    assert "oom_kill 1" in Path(counter).read_text()

    second = start_kernel()
    scanned(second)
    [death] = deaths(collector)
    assert death.message == ("killed while running In [3] (out of memory: the cgroup's oom_kill count "
                             "went up)")  # [1]: the load, [2]: the pid
    info = death.event["metaData"]["exitInfo"]
    assert info["cause"] == "out of memory"
    assert info["oomKillCount"] == {"atStart": 0, "afterDeath": 1, "cgroupVersion": 1}
    assert info["memoryLastSeen"]["cgroupLimitBytes"] == LIMIT_BYTES
