"""The watcher: a kernel's death reported at once from outside, with no kernel after it, read
back from the real collector; a normal end, an interrupt and a restart leave nothing behind and
report nothing; the watcher stays small."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from bugsnag_ipython.deaths.watcher import MODULE
from tests.conftest import StartKernel
from tests.kernel import Kernel
from tests.payloads import OTHER_KEY
from tests.stored import stored_payloads
from tests.test_kernel_deaths import WAIT, deaths, recording, scanned, start_cell, wait_dead
from tests.waits import waited

SOON = 1.0  # seconds: a death at the endpoint within this of the kill


def watchers(persistence: Path | None = None) -> set[int]:
    """The pids of the watcher processes running on the machine; with `persistence`, of those
    started by kernels with that persistence directory (named in their environment)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if MODULE.encode() not in cmdline.split(b"\0"):
                continue
            if persistence is not None:
                variable = f"BUGSNAG_PERSISTENCE_DIRECTORY={persistence}".encode()
                if variable not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
        except OSError:
            continue
        if not gone(int(entry.name)):
            found.add(int(entry.name))
    return found


def watcher_of(kernel: Kernel) -> int:
    pid = kernel.evaluate("get_ipython()._bugsnag_ipython.kernel_deaths.watcher.pid")
    assert isinstance(pid, int) and pid in watchers()
    return pid


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def watched(kernel: Kernel) -> int:
    recording(kernel)
    waited(lambda: kernel.evaluate(
        "getattr(get_ipython()._bugsnag_ipython.kernel_deaths.watcher, 'pid', None)") is not None, WAIT)
    return watcher_of(kernel)


def test_a_kernel_killed_mid_cell_is_reported_at_once_and_the_next_kernel_says_so(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = start_kernel()
    watcher = watched(first)
    # During a cell, execution_count is already the next cell's number.
    pid, count = first.evaluate("[__import__('os').getpid(), get_ipython().execution_count]")
    start_cell(first, "import time\ntime.sleep(60)", cell_id="train")
    os.kill(pid, signal.SIGKILL)
    assert waited(lambda: len(deaths(collector)) == 1, WAIT) < SOON
    [death] = deaths(collector)
    assert death.message == f"killed while running In [{count}]"
    assert death.event["metaData"]["notebook"]["cellId"] == "train"
    waited(lambda: gone(watcher), WAIT)

    second = start_kernel()
    scanned(second)
    assert len(deaths(collector)) == 1  # not reported again
    status = second.execute("%bugsnag_session status").stdout
    assert f"Previous kernel died running In [{count}] (killed); reported." in status


def uss(pid: int) -> int:
    """The memory only this process has (its unique set size), in bytes."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:]}
    return (fields["Private_Clean"] + fields["Private_Dirty"]) * 1024


def settled(pid: int) -> int:
    """The USS of a process once it has stopped changing (the watcher is started, then waits)."""
    readings = [uss(pid)]
    while len(readings) < 3 or len(set(readings[-3:])) > 1:
        time.sleep(0.1)
        readings.append(uss(pid))
    return readings[-1]


def test_a_normal_end_reports_nothing_and_leaves_no_watcher(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    watcher = watched(kernel)
    kernel.execute("1/0")
    assert collector.wait_for("events", 1, WAIT)
    start_cell(kernel, "x = 1")
    kernel.shutdown()
    assert waited(lambda: gone(watcher), WAIT) < SOON
    assert deaths(collector) == []


def test_an_interrupt_leaves_the_watcher_alone(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    watcher = watched(kernel)
    start_cell(kernel, "import time\ntime.sleep(60)")
    kernel.manager.interrupt_kernel()  # SIGINT to the kernel's process group
    assert kernel.execute("print(6 * 7)").stdout.strip() == "42"
    assert not gone(watcher) and watcher_of(kernel) == watcher
    assert deaths(collector) == []


def test_a_busy_kernel_ended_by_its_manager_reports_nothing(
    start_kernel: StartKernel, collector: Any
) -> None:
    """As a restart ends the kernel (the log file the test kernel was started with is closed, so
    it is not started again here)."""
    kernel = start_kernel()
    watcher = watched(kernel)
    pid = kernel.manager.provisioner.pid
    # A cell that sits out the interrupt jupyter_client sends first: the shutdown request is
    # answered, the kernel does not exit, and its process group is terminated, then killed.
    start_cell(kernel, "import time\nwhile True:\n    try:\n        time.sleep(60)\n"
                       "    except KeyboardInterrupt:\n        pass")
    kernel.client.stop_channels()
    kernel.manager.shutdown_kernel(now=False)
    assert gone(pid)
    waited(lambda: gone(watcher), WAIT)
    time.sleep(SOON)  # a report, had there been one, would be at the endpoint by now
    assert deaths(collector) == []


def test_the_watcher_stays_small_however_the_kernel_grows(start_kernel: StartKernel) -> None:
    kernel = start_kernel()
    watcher = watched(kernel)
    small = settled(watcher)
    kernel.execute("grown = bytearray(200 * 1024 * 1024)\ngrown[::4096] = b'x' * (len(grown) // 4096)")
    kernel.execute("del grown")
    # Nothing of the kernel's 200 MB: a few pages of its own may move (a config line read).
    assert abs(uss(watcher) - small) < 1024 * 1024, (uss(watcher), small)
    assert small < 25 * 1024 * 1024, small


def test_a_kernel_with_a_forked_child_alive_is_reported_at_once(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    watched(kernel)
    child = kernel.evaluate(
        "__import__('multiprocessing').get_context('fork').Process(target=__import__('time').sleep,"
        " args=(60,), daemon=True).start() or __import__('multiprocessing').active_children()[0].pid")
    pid = kernel.evaluate("__import__('os').getpid()")
    start_cell(kernel, "import time\ntime.sleep(60)")
    os.kill(pid, signal.SIGKILL)
    try:
        assert waited(lambda: len(deaths(collector)) == 1, WAIT) < SOON
    finally:
        os.kill(child, signal.SIGKILL)


def test_with_the_option_off_no_watcher_runs_and_the_next_kernel_reports(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    first = recording(start_kernel(BUGSNAG_WATCH_KERNEL_DEATHS="false"))
    assert first.evaluate("get_ipython()._bugsnag_ipython.kernel_deaths.watcher is None") is True
    assert watchers(tmp_path / "outbox") == set()
    pid = first.evaluate("__import__('os').getpid()")
    start_cell(first, "import time\ntime.sleep(60)")
    os.kill(pid, signal.SIGKILL)
    wait_dead(first)
    time.sleep(SOON)
    assert deaths(collector) == []  # nobody watched

    second = start_kernel(BUGSNAG_WATCH_KERNEL_DEATHS="false")
    scanned(second)
    assert len(deaths(collector)) == 1
    assert "Previous kernel died running" in second.execute("%bugsnag_session status").stdout


def test_a_death_the_endpoint_cannot_take_now_is_sent_by_the_next_kernel(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    first = start_kernel()
    watcher = watched(first)
    pid = first.evaluate("__import__('os').getpid()")
    start_cell(first, "import time\ntime.sleep(60)")
    collector.go_down()
    os.kill(pid, signal.SIGKILL)
    waited(lambda: gone(watcher), WAIT)
    kept = stored_payloads(tmp_path / "outbox")
    assert any(stored.kind == "event" for stored in kept)  # kept, for the next kernel
    collector.come_back()
    assert deaths(collector) == []

    second = start_kernel()
    scanned(second)
    assert len(deaths(collector)) == 1
    status = second.execute("%bugsnag_session status").stdout
    assert "Previous kernel died running In [" in status
    assert "(killed); kept to be reported later (the endpoint could not be reached)." in status


def test_options_changed_after_the_start_reach_the_watcher(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    watched(kernel)
    kernel.execute(f"import bugsnag_ipython\nbugsnag_ipython.configure(api_key='{OTHER_KEY}')")
    pid = kernel.evaluate("__import__('os').getpid()")
    start_cell(kernel, "import time\ntime.sleep(60)")
    os.kill(pid, signal.SIGKILL)
    waited(lambda: len(deaths(collector)) == 1, WAIT)
    [death] = deaths(collector)
    assert death.api_key == OTHER_KEY


def test_the_option_turned_off_and_on_in_a_kernel_stops_and_starts_its_watcher(
    start_kernel: StartKernel, tmp_path: Path
) -> None:
    kernel = start_kernel()
    first = watched(kernel)
    kernel.execute("import bugsnag_ipython\nbugsnag_ipython.configure(watch_kernel_deaths=False)")
    waited(lambda: gone(first), WAIT)
    assert watchers(tmp_path / "outbox") == set()
    kernel.execute("bugsnag_ipython.configure(watch_kernel_deaths=True)")
    waited(lambda: len(watchers(tmp_path / "outbox")) == 1, WAIT)
    assert watcher_of(kernel) != first
