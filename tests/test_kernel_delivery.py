"""Durable delivery in real kernels, against the real collector, with real outbox files."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from bugsnag_ipython.delivery.transport import READ_TIMEOUT
from bugsnag_ipython.notebook.extension import EXIT_FLUSH_SECONDS
from tests.conftest import StartKernel
from tests.kernel import Kernel
from tests.payloads import API_KEY
from tests.stored import stored_payloads
from tests.waits import eventually

WAIT = 15.0
# A cell that waited on the network would wait out the read timeout (10 s); a first error cell
# takes IPython alone 0.1-0.3 s, and several times that on a busy machine.
NOT_WAITING = READ_TIMEOUT / 4
# Retries in milliseconds, so a test of backoff takes a moment rather than minutes.
FAST = {"BUGSNAG_RETRY_BASE_SECONDS": "0.05", "BUGSNAG_RETRY_MAX_SECONDS": "0.4"}


def stored_kinds(tmp_path: Path) -> list[str]:
    """The kinds of the payloads the kernels' outbox holds, oldest first."""
    return [stored.kind for stored in stored_payloads(tmp_path / "outbox")]


def status(kernel: Kernel) -> str:
    return kernel.execute("%bugsnag_session status").stdout


def process_of(kernel: Kernel) -> Any:
    return kernel.manager.provisioner.process  # type: ignore[union-attr]


def kill(kernel: Kernel) -> None:
    process = process_of(kernel)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(5)


def received(request: Any) -> float:
    return datetime.fromisoformat(request.received_at.replace("Z", "+00:00")).timestamp()


def drained(*kernels: Kernel) -> None:
    """Wait until each kernel has nothing left to send (its outbox looked through, every payload
    answered): a duplicate, if one were coming, has arrived by then."""
    for kernel in kernels:
        assert kernel.flush() is True, "a kernel still had payloads waiting"


def held(collector: Any) -> None:
    """Wait until the hanging collector holds an event request unanswered."""
    unanswered = eventually(lambda: any(r.status == 0 for r in collector.store.requests("events")), WAIT)
    assert unanswered, f"no event request reached the collector within {WAIT} s"


def test_endpoint_down_then_back_delivers_the_error_and_the_launch_session_once(
    start_kernel: StartKernel, collector: Any
) -> None:
    collector.go_down()
    kernel = start_kernel(**FAST)
    started = time.monotonic()
    failed = kernel.execute("1/0")
    assert failed.error_name == "ZeroDivisionError"
    assert time.monotonic() - started < NOT_WAITING  # the cell did not wait for the network
    assert kernel.flush(0.2) is False  # nothing can arrive while the endpoint is down
    collector.come_back()
    assert kernel.flush() is True
    assert len(collector.store.sessions()) == 1
    [event] = collector.store.events()
    assert event.error_class == "ZeroDivisionError"
    assert stored_kinds(Path(kernel.root).parent) == []


def test_503_503_202_is_delivered_once_after_retries(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(**FAST)
    collector.script("notify", 503, 503)
    kernel.execute("1/0")
    assert kernel.flush() is True
    assert [r.status for r in collector.store.requests("events")] == [503, 503, 202]
    assert len(collector.store.events()) == 1
    first, second, third = collector.store.requests("events")
    assert first.body == second.body == third.body  # the same bytes, and so the same digest
    assert len({r.header("Bugsnag-Sent-At") for r in (first, second, third)}) == 3  # per attempt
    assert "2 retried" in status(kernel)


def test_429_with_retry_after_waits_that_long_even_when_flushed(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(**FAST)
    collector.script("notify", (429, {"Retry-After": "1.5"}))
    kernel.execute("1/0")
    assert kernel.flush() is True
    refused, accepted = collector.store.requests("events")
    assert (refused.status, accepted.status) == (429, 202)
    assert received(accepted) - received(refused) >= 1.45
    assert len(collector.store.events()) == 1


def test_401_is_dropped_not_retried_and_status_says_why(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(**FAST)
    collector.script("notify", 401)
    kernel.execute("1/0")
    assert kernel.flush() is True  # dropped on purpose: nothing is left to send
    assert [r.status for r in collector.store.requests("events")] == [401]
    shown = status(kernel)
    assert "1 dropped (1 API key rejected (HTTP 401))" in shown
    assert "BugSnag rejected the API key" in shown


def test_a_hanging_endpoint_neither_blocks_cells_nor_the_exit_and_the_next_kernel_delivers(
    tmp_path: Path, start_kernel: StartKernel, collector: Any
) -> None:
    collector.hang()
    kernel = start_kernel(**FAST)
    started = time.monotonic()
    assert kernel.execute("1/0").error_name == "ZeroDivisionError"
    assert kernel.execute("x = 1").status == "ok"
    assert time.monotonic() - started < NOT_WAITING
    process = process_of(kernel)
    took = kernel.shutdown()
    assert process.returncode == 0  # it exited by itself: no SIGTERM, no SIGKILL
    assert sorted(stored_kinds(tmp_path)) == ["event", "session"]

    collector.unhang()
    next_kernel = start_kernel(**FAST)
    assert collector.wait_for("events", 1, WAIT) and collector.wait_for("sessions", 2, WAIT)
    drained(next_kernel)
    assert len(collector.store.events()) == 1
    sessions = [s.session_id for s in collector.store.sessions()]
    assert len(sessions) == len(set(sessions)) == 2
    # The hang added at most the exit flush to the exit: the next kernel, with nothing left to
    # send, exits in the time the kernel itself takes (longer on a busy machine, and on the
    # lowest versions' IPython). What the user would notice, a SIGTERM 2.5 s after the request,
    # is the exit status above (a flush counted from the exit rather than the request met it on
    # a busy machine); this bound allows the two exits' noise on two busy workers, not a
    # second flush.
    assert took - next_kernel.shutdown() < EXIT_FLUSH_SECONDS + 0.5


def test_killed_while_the_endpoint_hangs_the_next_kernel_delivers_the_error(
    start_kernel: StartKernel, collector: Any
) -> None:
    collector.hang()
    kernel = start_kernel(**FAST)
    kernel.execute("raise ValueError('sent while hanging')")
    held(collector)  # the event is on the wire, unanswered, when the kernel dies
    kill(kernel)
    collector.unhang()
    next_kernel = start_kernel(**FAST)
    assert collector.wait_for("events", 1, WAIT)
    drained(next_kernel)
    [event] = collector.store.events()
    assert event.message == "sent while hanging"


def test_killed_right_after_an_error_while_the_endpoint_is_down_the_next_kernel_delivers_it(
    start_kernel: StartKernel, collector: Any
) -> None:
    collector.go_down()
    kernel = start_kernel(**FAST)
    kernel.execute("raise KeyError('killed right after')")
    kill(kernel)
    collector.come_back()
    next_kernel = start_kernel(**FAST)
    assert collector.wait_for("events", 1, WAIT)
    drained(next_kernel)
    [event] = collector.store.events()
    assert event.error_class == "KeyError"


def test_two_kernels_on_one_outbox_send_each_stored_payload_once(
    start_kernel: StartKernel, collector: Any
) -> None:
    collector.go_down()
    maker = start_kernel(**FAST)
    maker.execute(
        "import bugsnag_ipython\n"
        "for n in range(50):\n"
        "    bugsnag_ipython.notify(RuntimeError(f'stored {n}'))"
    )
    assert maker.evaluate("__import__('bugsnag_ipython')._client().delivery.stored") == 51
    kill(maker)
    collector.come_back()
    first, second = start_kernel(load=False, **FAST), start_kernel(load=False, **FAST)
    loads = [threading.Thread(target=k.execute, args=("%load_ext bugsnag_ipython",)) for k in (first, second)]
    for load in loads:
        load.start()
    for load in loads:
        load.join()
    assert collector.wait_for("events", 50, WAIT) and collector.wait_for("sessions", 3, WAIT)
    drained(first, second)
    messages = sorted(event.message for event in collector.store.events())
    assert messages == sorted(f"stored {n}" for n in range(50))
    assert len(collector.store.sessions()) == 3  # the maker's and each kernel's launch


def test_a_corrupt_file_is_set_aside_and_the_rest_are_delivered(
    tmp_path: Path, start_kernel: StartKernel, collector: Any
) -> None:
    collector.go_down()
    maker = start_kernel(**FAST)
    maker.execute("import bugsnag_ipython\nfor n in range(3):\n    bugsnag_ipython.notify(OSError(n))")
    kill(maker)
    outbox = tmp_path / "outbox" / "outbox"
    [journal] = outbox.glob("*.journal")
    with journal.open("ab") as file:  # as if the kernel died halfway through an append
        file.write(b'{"format":2,"id":"1-2-3","kind":"event"')
    real = stored_payloads(tmp_path / "outbox")[-1]
    cut_short = outbox / f"event-{time.time_ns():019d}-abc-2.{'0' * 12}.payload"
    header = {"format": 2, "kind": "event", "url": real.url, "apiKey": real.api_key,
              "createdAt": time.time(), "bytes": 100}
    cut_short.write_bytes(json.dumps(header).encode() + b"\n" + b"{}")  # shorter than it says
    garbage = outbox / f"event-{time.time_ns():019d}-abc-1.{'0' * 12}.payload"
    garbage.write_bytes(b"\x00\xffnot a payload")
    (outbox / "notes.txt").write_text("someone else's file")
    collector.come_back()
    kernel = start_kernel(**FAST)
    assert collector.wait_for("events", 3, WAIT)
    assert kernel.flush() is True
    assert sorted(e.message for e in collector.store.events()) == ["0", "1", "2"]
    aside = sorted(p.name for p in (tmp_path / "outbox" / "set-aside").iterdir())
    assert len(aside) == 4
    assert any(name.endswith("notes.txt") for name in aside)
    assert any(name.endswith(".journal") for name in aside)  # what it held is delivered
    assert stored_kinds(tmp_path) == []
    assert "4 unreadable file set aside" in status(kernel)


LOOP = (
    "import bugsnag_ipython, resource\n"
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "for n in range(1000):\n"
    "    try:\n"
    "        raise ValueError(f'loop {n}')\n"
    "    except ValueError as error:\n"
    "        bugsnag_ipython.notify(error)\n"
    "grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before"
)


def test_a_thousand_errors_with_the_endpoint_up_all_arrive_in_bounded_memory(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(**FAST)
    assert kernel.execute(LOOP).status == "ok"
    assert kernel.flush(30) is True
    assert collector.wait_for("events", 1000, WAIT)
    assert len(collector.store.events()) == 1000
    assert kernel.evaluate("grown_kb") < 50 * 1024
    assert collector.connection_count <= 3  # one keep-alive connection did the work


def test_a_thousand_errors_with_the_endpoint_down_are_stored_then_delivered(
    tmp_path: Path, start_kernel: StartKernel, collector: Any
) -> None:
    collector.go_down()
    kernel = start_kernel(**FAST)
    assert kernel.execute(LOOP).status == "ok"
    assert len(stored_kinds(tmp_path)) == 1001  # the events and the launch session
    assert kernel.evaluate("grown_kb") < 50 * 1024
    collector.come_back()
    assert kernel.flush(30) is True
    events = collector.store.events()
    assert len(events) == 1000
    assert stored_kinds(tmp_path) == []
    # BugSnag's event API takes an array: the waiting events went together, at most 100 a request.
    per_request = Counter(event.request_id for event in events)
    assert max(per_request.values()) == 100, per_request


def test_past_the_cap_the_oldest_are_dropped_and_counted(
    tmp_path: Path, start_kernel: StartKernel, collector: Any
) -> None:
    collector.go_down()
    kernel = start_kernel(BUGSNAG_MAX_STORED_EVENTS="100", **FAST)
    assert kernel.execute(LOOP).status == "ok"
    assert stored_kinds(tmp_path).count("event") == 100
    assert "900 over the stored cap" in status(kernel)
    collector.come_back()
    assert kernel.flush(30) is True
    messages = {event.message for event in collector.store.events()}
    assert messages == {f"loop {n}" for n in range(900, 1000)}  # the newest were kept


def test_a_forked_child_sends_its_own_errors(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(**FAST)
    kernel.execute("1/0")  # the parent's threads are running when it forks
    forked = kernel.execute(
        "import os, bugsnag_ipython\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    bugsnag_ipython.notify(RuntimeError('from the child'))\n"
        "    os._exit(0 if bugsnag_ipython.flush(10) else 1)\n"
        "status = os.waitpid(pid, 0)[1]",
        timeout=20,
    )
    assert forked.status == "ok"
    assert kernel.evaluate("status") == 0
    assert collector.wait_for("events", 2, WAIT)
    assert sorted(e.message for e in collector.store.events()) == ["division by zero", "from the child"]


def test_a_forked_child_that_exits_at_once_leaves_its_error_for_the_next_kernel(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(**FAST)
    kernel.execute(
        "import os, bugsnag_ipython\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    bugsnag_ipython.notify(RuntimeError('child exits at once'))\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)"
    )
    kill(kernel)
    next_kernel = start_kernel(**FAST)
    assert collector.wait_for("events", 1, WAIT)
    drained(next_kernel)
    assert [e.message for e in collector.store.events()] == ["child exits at once"]


def test_status_shows_the_delivery_counters(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(**FAST)
    kernel.execute("1/0")
    assert kernel.flush() is True
    line = next(line for line in status(kernel).splitlines() if line.startswith("Delivery:"))
    assert line == "Delivery: 2 delivered, 0 waiting, 0 retried, 0 dropped"
    counters = kernel.evaluate("__import__('bugsnag_ipython')._client().delivery.counters()")
    assert json.loads(json.dumps(counters))["delivered"] == 2


NOTIFY_TEN = ("import bugsnag_ipython\nfor n in range(10):\n"
              "    bugsnag_ipython.notify(ValueError(f'held {n}'))")


def test_without_an_api_key_past_the_held_cap_the_oldest_are_dropped_and_counted(
    start_kernel: StartKernel, collector: Any
) -> None:
    # Without automatic sessions, what is held is the ten events alone.
    kernel = start_kernel(BUGSNAG_API_KEY="", BUGSNAG_MAX_HELD_PAYLOADS="3",
                          BUGSNAG_AUTO_TRACK_SESSIONS="false")
    assert kernel.execute(NOTIFY_TEN).status == "ok"
    assert "7 dropped (7 held overflow)" in status(kernel)
    kernel.execute(f"bugsnag_ipython.configure(api_key={API_KEY!r})")
    assert kernel.flush() is True
    assert sorted(e.message for e in collector.store.events()) == ["held 7", "held 8", "held 9"]


def test_past_the_stored_sessions_cap_the_oldest_are_dropped_and_counted(
    tmp_path: Path, start_kernel: StartKernel, collector: Any
) -> None:
    collector.go_down()
    kernel = start_kernel(BUGSNAG_MAX_STORED_SESSIONS="2", **FAST)
    started = kernel.execute("import bugsnag_ipython\nids = []\nfor _ in range(4):\n"
                             "    bugsnag_ipython.start_session()\n"
                             "    ids.append(bugsnag_ipython.current_session().id)")
    assert started.status == "ok"
    # A session in flight when the cap is met is measured against it once its send fails.
    assert eventually(lambda: stored_kinds(tmp_path).count("session") <= 2, WAIT)
    assert stored_kinds(tmp_path).count("session") == 2
    assert "3 over the stored cap" in status(kernel)  # the launch session and two of the four
    collector.come_back()
    assert kernel.flush(30) is True
    assert sorted(s.session_id for s in collector.store.sessions()) == sorted(kernel.evaluate("ids[-2:]"))
