"""The watcher: a kernel's death reported at once from outside, with no kernel after it, read
back from the real collector; a normal end, an interrupt and a restart leave nothing behind and
report nothing; the watcher stays small."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bugsnag_ipython.sources.death_watch import MODULE
from tests.conftest import StartKernel
from tests.kernel import Kernel
from tests.test_kernel_deaths import WAIT, deaths, recording, scanned, start_cell, wait_dead

SOON = 1.0  # seconds: a death at the endpoint within this of the kill


def watchers() -> set[int]:
    """The pids of every watcher process on the machine (of this test run's and others')."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if MODULE.encode() in cmdline.split(b"\0"):
            found.add(int(entry.name))
    return found


def watcher_of(kernel: Kernel) -> int:
    pid = kernel.evaluate("get_ipython()._bugsnag_ipython.kernel_deaths.watch.pid")
    assert isinstance(pid, int) and pid in watchers()
    return pid


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def waited(condition: Callable[[], bool], timeout: float = WAIT) -> float:
    """Seconds until `condition` held (polled every 10 ms); fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "never happened"
        time.sleep(0.01)
    return time.monotonic() - started


def watched(kernel: Kernel) -> int:
    recording(kernel)
    waited(lambda: kernel.evaluate(
        "getattr(get_ipython()._bugsnag_ipython.kernel_deaths.watch, 'pid', None)") is not None)
    return watcher_of(kernel)


def test_a_kernel_killed_mid_cell_is_reported_at_once_and_the_next_kernel_says_so(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = start_kernel()
    watcher = watched(first)
    # During a cell, execution_count is already the next cell's number.
    pid, count = first.evaluate("[__import__('os').getpid(), get_ipython().execution_count]")
    start_cell(first, "import time\ntime.sleep(60)", cell_id="train")
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    assert waited(lambda: len(deaths(collector)) == 1) < SOON
    [death] = deaths(collector)
    assert death.message == f"killed while running In [{count}]"
    assert death.event["metaData"]["notebook"]["cellId"] == "train"
    waited(lambda: gone(watcher))

    second = start_kernel()
    scanned(second)
    assert len(deaths(collector)) == 1  # not reported again
    status = second.execute("%bugsnag_session status").stdout
    assert f"Previous kernel died running In [{count}] (killed); reported." in status
