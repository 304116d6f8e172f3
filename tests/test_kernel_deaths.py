"""Kernels that die, reported by their watcher or the next kernel, read back from the real
collector: a SIGKILL during a cell, a segfault in a cell, the other fatal signals, `os._exit`
and a kill without a shutdown request during a cell, a clean shutdown after errors, two kernels
starting after one crash, `send_code` off, and kernels that sent nothing while they lived."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from bugsnag_ipython.deaths.record import DamagedRecord, RecordContents, read_record
from tests.conftest import StartKernel
from tests.kernel import Kernel
from tests.waits import eventually

WAIT = 20.0


def start_cell(kernel: Kernel, code: str, cell_id: str | None = None, *, wait: bool = True) -> None:
    """Send a cell without waiting for it to finish; with `wait`, return once it has started
    (a cell that crashes at once may die before its output leaves the kernel)."""
    kernel.send(f"print('started', flush=True)\n{code}", cell_id=cell_id)
    deadline = time.monotonic() + WAIT
    while wait and time.monotonic() < deadline:
        msg = kernel.client.get_iopub_msg(timeout=WAIT)
        if msg["msg_type"] == "stream" and "started" in msg["content"]["text"]:
            return
    assert not wait, "the cell did not start"


def on_disk(kernel: Kernel) -> RecordContents | None:
    """The kernel's crash record as its file holds it now, read as the next kernel reads it
    (None: not made yet). Read from outside the kernel: waiting on it runs no cell, so the
    execution counts a test asserts stay its own."""
    pid = kernel.manager.provisioner.pid
    for path in (kernel.root.parent / "outbox" / "kernels").glob("*.record"):
        try:
            contents = read_record(path.read_bytes())
        except (OSError, DamagedRecord):
            continue  # claimed or removed meanwhile
        if contents.pid == pid:
            return contents
    return None


def until(kernel: Kernel, ready: Callable[[RecordContents], bool], what: str) -> RecordContents:
    """Wait until the kernel's record on disk satisfies `ready`; the record then."""
    def satisfied() -> RecordContents | None:
        contents = on_disk(kernel)
        return contents if contents is not None and ready(contents) else None

    found = eventually(satisfied, WAIT)
    assert found is not None, f"the crash record never showed {what} within {WAIT} s"
    return found


def recording(kernel: Kernel) -> Kernel:
    """Wait until the kernel keeps its crash record (made in the background at load): the
    checkpoint wrote it once, so the record is the cell hooks' and faulthandler's."""
    until(kernel, lambda record: bool(record.facts), "a first checkpoint")
    return kernel


def named(kernel: Kernel, cell_id: str) -> None:
    """Wait until the checkpoint (once a second) has named the code file of cell `cell_id`."""
    def has_it(record: RecordContents) -> bool:
        cells = record.facts.get("cells") or {}
        return any(entry[0] == cell_id for entry in cells.values())

    until(kernel, has_it, f"cell {cell_id!r} named")


def wait_dead(kernel: Kernel) -> None:
    assert eventually(lambda: not kernel.alive, WAIT), "the kernel is still alive"


def kill_in_cell(kernel: Kernel, code: str, cell_id: str | None = None) -> tuple[RecordContents, float]:
    """SIGKILL the kernel while `code` runs, once a checkpoint made after the cell started is
    whole on disk (the breadcrumbs so far with it); the record as last read before the kill,
    and when the kill was sent (the monotonic clock, the kernel's too)."""
    pid = kernel.evaluate("__import__('os').getpid()")
    start_cell(kernel, code, cell_id)

    def seen_running(record: RecordContents) -> bool:
        return (record.cell is not None and record.vitals is not None
                and record.vitals.seen_monotonic > record.cell.started_monotonic)

    first = until(kernel, seen_running, "the cell running at a checkpoint").vitals
    assert first is not None
    # A checkpoint writes its document after the vitals: the next one's vitals mean it is whole.
    last = until(kernel, lambda record: record.vitals is not None
                 and record.vitals.seen_monotonic > first.seen_monotonic, "the next checkpoint")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_dead(kernel)
    return last, killed


def scanned(kernel: Kernel) -> None:
    """Wait until the kernel has looked for dead kernels, then deliver what it made. The
    kernel-deaths source (the README's "kernel deaths" row) must be loaded, exactly once:
    without it there is no scan to wait for, and the wait must fail rather than pass."""
    looks = ("[s.scanned.is_set() for s in get_ipython()._bugsnag_ipython.sources"
             " if type(s).__name__ == 'KernelDeaths']")
    deadline = time.monotonic() + WAIT
    while (state := kernel.evaluate(looks)) == [False] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert state == [True], f"no look for dead kernels within {WAIT} s (kernel-deaths sources: {state})"
    assert kernel.flush() is True


def deaths(collector: Any) -> list[Any]:
    return [event for event in collector.store.events() if event.error_class == "KernelDied"]


def test_a_kernel_killed_during_a_cell_is_reported_against_its_session(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = start_kernel()
    first.execute("import bugsnag_ipython\nbugsnag_ipython.add_metadata('dataset', {'rows': 3})")
    first.execute("total = sum(range(10))", cell_id="prepare")
    session = first.evaluate("bugsnag_ipython.current_session().id")
    assert first.evaluate("bugsnag_ipython.flush(10)") is True
    seen, killed = kill_in_cell(first, "import time\ntime.sleep(60)", cell_id="train")

    second = start_kernel()
    assert collector.wait_for("events", 1, WAIT)
    scanned(second)
    [death] = deaths(collector)
    body = death.event
    # In [1] loaded the extension, In [4] to [6] asked the kernel for its session, flush, pid.
    assert death.unhandled and death.message == "killed while running In [7]"
    assert body["session"]["id"] == session and session in {s.session_id for s in collector.store.sessions()}
    assert body["session"]["events"] == {"handled": 0, "unhandled": 1}
    assert body["context"] == "In [7]" and body["app"]["inForeground"] is True
    # Until it was last seen alive: the checkpoint's last look, no earlier than the one read
    # before the kill, no later than the kill (give or take the wall clock against the
    # monotonic one, which the record keeps both of).
    ran = body["app"]["durationInForeground"]
    assert seen.cell is not None and seen.vitals is not None
    started = seen.cell.started_monotonic
    last_seen_ms, killed_ms = (seen.vitals.seen_monotonic - started) * 1000, (killed - started) * 1000
    assert last_seen_ms - 50 <= ran <= killed_ms + 50, (last_seen_ms, ran, killed_ms)
    assert ran > 0 and body["metaData"]["exitInfo"]["cellRanMs"] == ran
    assert body["metaData"]["notebook"] == {
        "cellId": "train", "executionCount": 7,
        "cellSource": "print('started', flush=True)\nimport time\ntime.sleep(60)",
    }
    assert body["metaData"]["dataset"] == {"rows": 3}
    info = body["metaData"]["exitInfo"]
    assert info["importance"] == "foreground" and info["cause"].startswith("killed")
    assert info["memoryLastSeen"]["residentBytes"] > 10_000_000
    assert "oomKillCount" in info  # these machines have cgroup v1: the count, before and after
    assert {"In [3]", "In [6]"} <= {crumb["name"] for crumb in body["breadcrumbs"]}
    assert body["groupingHash"] == "KernelDied killed cell-train"
    # The record was claimed and removed: only the living kernel's is left.
    assert len(list((second.root.parent / "outbox" / "kernels").glob("*.record"))) == 1


def test_a_segfault_in_a_cell_is_reported_with_its_frames_named_by_cell(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = recording(start_kernel())
    first.execute("def read_nothing():\n    return ctypes.string_at(0)", cell_id="helper")
    named(first, "helper")  # as the checkpoint does once a second: until then it is "code-<hash>"
    start_cell(first, "import ctypes\nread_nothing()", cell_id="crash", wait=False)
    wait_dead(first)

    start_kernel()
    assert collector.wait_for("events", 1, WAIT)
    [death] = deaths(collector)
    body = death.event
    assert death.message == "segmentation fault (SIGSEGV) while running In [3]"  # [1]: the load
    assert body["severityReason"] == {"type": "signal", "attributes": {"signalType": "SIGSEGV"}}
    frames = body["exceptions"][0]["stacktrace"]
    assert [(f["file"], f["method"], f["inProject"]) for f in frames] == [
        ("ctypes/__init__.py", "string_at", False),
        ("cell-helper", "read_nothing", True),
        ("cell-crash", "<module>", True),
    ]
    assert (frames[1]["lineNumber"], frames[2]["lineNumber"]) == (2, 3)
    assert frames[2]["code"]["3"] == "read_nothing()"
    assert frames[1]["code"]["2"] == "    return ctypes.string_at(0)"
    assert "groupingHash" not in body  # grouped by the top in-project frame, like any event
    threads = body["threads"]
    assert sum(thread["errorReportingThread"] for thread in threads) == 1 and len(threads) > 1
    every_file = [f["file"] for thread in threads for f in thread["stacktrace"]]
    assert not any(file.startswith("/tmp/ipykernel_") for file in every_file)
    assert body["metaData"]["exitInfo"]["signal"] == "SIGSEGV"


def test_a_clean_shutdown_after_errors_reports_no_death(start_kernel: StartKernel, collector: Any) -> None:
    first = start_kernel()
    first.execute("1/0")
    first.execute("import threading\nthreading.Thread(target=lambda: {}['k']).start()")
    assert collector.wait_for("events", 2, WAIT)
    first.shutdown()
    second = start_kernel()
    scanned(second)
    assert deaths(collector) == [], [d.message for d in deaths(collector)]
    assert len(collector.store.events()) == 2
    kernels = second.root.parent / "outbox" / "kernels"
    assert len(list(kernels.glob("*.record"))) == 1 and list(kernels.glob("*.claimed")) == []


def test_a_kernel_killed_while_idle_is_not_reported(start_kernel: StartKernel, collector: Any) -> None:
    first = start_kernel()
    first.execute("x = 1")
    pid = first.evaluate("__import__('os').getpid()")
    # Its record is on disk and says idle: the kill finds a record to leave, and no cell.
    until(first, lambda record: bool(record.facts) and record.cell is None, "the kernel idle")
    os.kill(pid, signal.SIGKILL)
    wait_dead(first)
    second = start_kernel()
    scanned(second)
    assert deaths(collector) == []
    assert len(list((second.root.parent / "outbox" / "kernels").glob("*.record"))) == 1


def test_two_kernels_starting_after_one_crash_send_one_event(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = start_kernel()
    kill_in_cell(first, "while True:\n    pass")
    second, third = start_kernel(), start_kernel()
    scanned(second)
    scanned(third)
    assert len(deaths(collector)) == 1


def test_send_code_off_leaves_no_source_in_the_death(start_kernel: StartKernel, collector: Any) -> None:
    first = recording(start_kernel(BUGSNAG_SEND_CODE="false"))
    start_cell(first, "marker = 'quarterly_secret_41'\nimport ctypes\nctypes.string_at(0)", cell_id="c",
               wait=False)
    wait_dead(first)
    start_kernel(BUGSNAG_SEND_CODE="false")
    assert collector.wait_for("events", 1, WAIT)
    [death] = deaths(collector)
    assert "cellSource" not in death.event["metaData"]["notebook"]
    frames = death.event["exceptions"][0]["stacktrace"]
    assert frames[-1]["file"] == "cell-c" and all("code" not in frame for frame in frames)
    [request] = collector.store.requests("events")
    assert "quarterly_secret_41" not in request.body and "string_at(0)" not in request.body




def test_a_busy_kernel_killed_after_a_shutdown_request_is_no_death(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = start_kernel()
    pid = first.evaluate("__import__('os').getpid()")
    start_cell(first, "import time\ntime.sleep(60)")
    first.client.shutdown()  # the frontend's restart: the control channel answers while busy
    first.client.get_control_msg(timeout=WAIT)  # the shutdown reply: exit_now is set
    os.kill(pid, signal.SIGKILL)  # what jupyter_client does when the busy kernel does not exit
    wait_dead(first)
    second = start_kernel()
    scanned(second)
    assert deaths(collector) == []


def test_unloading_removes_the_record_and_gives_faulthandler_back(start_kernel: StartKernel) -> None:
    kernel = start_kernel()
    scanned(kernel)
    kernels = kernel.root.parent / "outbox" / "kernels"
    assert len(list(kernels.glob("*.record"))) == 1
    assert kernel.evaluate("__import__('faulthandler').is_enabled()") is True
    assert kernel.execute("%unload_ext bugsnag_ipython").status == "ok"
    assert list(kernels.glob("*")) == []
    assert kernel.evaluate("__import__('faulthandler').is_enabled()") is False


def records_left(kernel: Kernel) -> list[str]:
    folder = kernel.root.parent / "outbox" / "kernels"
    return sorted(path.name for path in folder.glob("*") if path.suffix in (".record", ".claimed"))


@pytest.mark.parametrize("name", ["SIGABRT", "SIGFPE", "SIGILL"])
def test_a_fatal_signal_in_a_cell_is_reported_by_the_watcher_with_its_name(
    start_kernel: StartKernel, collector: Any, name: str
) -> None:
    kernel = recording(start_kernel())
    start_cell(kernel, f"import os, signal\nos.kill(os.getpid(), signal.{name})", cell_id="fatal", wait=False)
    wait_dead(kernel)
    assert collector.wait_for("events", 1, WAIT)  # no next kernel: the watcher sent it
    [death] = deaths(collector)
    assert death.unhandled and death.message.endswith(f"({name}) while running In [2]")
    assert death.event["severityReason"] == {"type": "signal", "attributes": {"signalType": name}}
    assert death.event["metaData"]["exitInfo"]["signal"] == name
    assert death.event["exceptions"][0]["stacktrace"][-1]["file"] == "cell-fatal"


@pytest.mark.parametrize("how", ["os._exit", "restart_kernel(now=True)"])
def test_a_kernel_gone_without_a_trace_during_a_cell_is_reported(
    start_kernel: StartKernel, collector: Any, how: str
) -> None:
    kernel = recording(start_kernel())
    if how == "os._exit":
        start_cell(kernel, "import os\nos._exit(3)", wait=False)
        wait_dead(kernel)
    else:
        start_cell(kernel, "import time\ntime.sleep(60)")
        # restart_kernel(now=True)'s first half, all the old kernel meets: killed, with no shutdown
        # request (the second half starts a new kernel, with launch arguments this harness closed).
        kernel.manager.shutdown_kernel(now=True, restart=True)
    assert collector.wait_for("events", 1, WAIT)
    [death] = deaths(collector)
    assert death.unhandled and death.message == "killed while running In [2]"
    assert death.event["app"]["inForeground"] is True
    info = death.event["metaData"]["exitInfo"]
    assert info["importance"] == "foreground" and info["cause"].startswith("killed")
    assert death.event["groupingHash"].startswith("KernelDied killed cell-")


@pytest.mark.parametrize("settings", [
    {"BUGSNAG_RELEASE_STAGE": "staging", "BUGSNAG_ENABLED_RELEASE_STAGES": "production"},
    {"BUGSNAG_API_KEY": ""},
], ids=["release stage not enabled", "no API key"])
def test_a_kernel_that_sent_nothing_while_it_lived_has_its_death_not_sent(
    start_kernel: StartKernel, collector: Any, settings: dict[str, str]
) -> None:
    kernel = start_kernel(**settings)
    kernel.execute("1/0")
    kill_in_cell(kernel, "import time\ntime.sleep(60)")
    # The watcher looked at the record and removed it: a death that does not count.
    assert eventually(lambda: records_left(kernel) == [], WAIT), records_left(kernel)
    assert collector.store.events() == [] and collector.store.sessions() == []
    assert collector.store.requests("events") == []
