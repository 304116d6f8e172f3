"""An interrupt never costs the event of the error it interrupted: a 3,000-frame RecursionError
interrupted (as Jupyter's interrupt button does) at several delays after it was raised, and
after it was shown, is delivered once each, and the kernel goes on; an interrupt that lands
while the extension builds the event is held off."""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import StartKernel
from tests.kernel import Kernel

WAIT = 60.0
# IPython formats a 3,000-frame traceback in its default modes for seconds on a busy machine;
# in Plain mode, in a fraction of one. The paths an interrupt can land in are the same.
# When IPython begins to show the error, a byte is written to a FIFO the test reads: the error
# has then left the cell's code (an interrupt in the cell's code, even as the error unwinds
# through it, is the user stopping their own code). The marker is a module of its own, outside
# the project, as IPython's code would be.
MARKER = """\
import os

def mark_showing(shell, path):
    fifo = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    show = shell.showtraceback

    def showtraceback(*args, **kwargs):
        os.write(fifo, b".")
        return show(*args, **kwargs)

    shell.showtraceback = showtraceback
"""
DEEP = """\
import sys
sys.path.insert(0, {folder!r})
import showing_marker
showing_marker.mark_showing(get_ipython(), {fifo!r})
sys.setrecursionlimit(3000)
get_ipython().run_line_magic("xmode", "Plain")
def dive(depth):
    return dive(depth + 1)
"""


def interrupted(kernel: Kernel, cell_id: str, raising: int, *, after: str, delay: float) -> list[str]:
    """Run `dive(0)` as cell `cell_id`, interrupt the kernel `delay` seconds after `after`
    ("raised": IPython begins to show the error, the byte on the FIFO `raising`; "shown":
    IPython's error message), and return what the cell showed."""
    with contextlib.suppress(BlockingIOError):
        while os.read(raising, 4096):  # what showing earlier errors wrote
            pass
    msg_id = kernel.send("dive(0)", cell_id=cell_id)
    if after == "raised":
        assert select.select([raising], [], [], WAIT)[0], "IPython never showed the error"
        os.read(raising, 16)
        time.sleep(delay)
        kernel.manager.interrupt_kernel()
    shown: list[str] = []
    while True:
        msg = kernel.client.get_iopub_msg(timeout=WAIT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, body = msg["msg_type"], msg["content"]
        if kind == "error":
            shown.append(body["ename"])
            if after == "shown" and len(shown) == 1:
                time.sleep(delay)
                kernel.manager.interrupt_kernel()
        elif kind == "stream":
            shown.append(body["text"].strip())
        if kind == "status" and body["execution_state"] == "idle":
            return shown


def test_a_deep_error_interrupted_while_shown_is_delivered_once_each_time(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    kernel = start_kernel()
    folder, fifo = tmp_path / "marker", tmp_path / "raising"
    folder.mkdir()
    (folder / "showing_marker.py").write_text(MARKER)
    os.mkfifo(fifo)
    raising = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert kernel.execute(DEEP.format(folder=str(folder), fifo=str(fifo))).status == "ok"
        runs = [(after, delay) for after in ("raised", "shown") for delay in (0.0, 0.010, 0.025, 0.050)]
        for after, delay in runs:
            shown = interrupted(kernel, f"{after}-{delay}", raising, after=after, delay=delay)
            assert "RecursionError" in shown or "KeyboardInterrupt" in shown, shown
        assert kernel.flush() is True
        reported = Counter(event.event["metaData"]["notebook"]["cellId"]
                           for event in collector.store.events() if event.error_class == "RecursionError")
        assert reported == Counter({f"{after}-{delay}": 1 for after, delay in runs})
        assert not [event for event in collector.store.events() if event.error_class != "RecursionError"]
        # The kernel goes on: cells run, and the next error is reported.
        assert kernel.execute("x = 1 + 1").status == "ok"
        kernel.execute("{}['missing']")
        assert kernel.flush() is True
        assert [event.error_class for event in collector.store.events()][-1] == "KeyError"
    finally:
        os.close(raising)


def test_an_interrupt_while_the_event_is_made_is_held_off(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    # An on-error callback runs while the event is made: the interrupt lands right there.
    kernel.execute("import os, signal, bugsnag_ipython\n"
                   "bugsnag_ipython.add_on_error(lambda event: os.kill(os.getpid(), signal.SIGINT))")
    failed = kernel.execute("1/0")
    assert failed.error_name == "ZeroDivisionError" and "KeyboardInterrupt" not in failed.text
    assert kernel.flush() is True
    assert [event.error_class for event in collector.store.events()] == ["ZeroDivisionError"]
    # Held off once, not for good: the next interrupt stops a running cell.
    stopped = kernel.execute("import time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)")
    assert stopped.error_name == "KeyboardInterrupt"
