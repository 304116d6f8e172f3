"""3. The cost of a reported error on the cell's thread, against bugsnag-python and sentry-sdk.

A cell that raises through a 20-frame call chain takes tens of milliseconds, nearly all of it
IPython formatting the traceback, so the extension's own work is measured directly: the two cell
events are triggered with that cell's real ExecutionInfo/ExecutionResult (the real exception and
its traceback), in interleaved batches with the extension's callbacks attached and detached, on
this thread's CPU clock. That counts everything up to the payload handed over, its append to
the outbox journal included; the sender's work is on its own thread and not counted. The
append alone is timed too, since its cost is mostly the file system's.
The target is a share of the baseline measured in the same run: the raising cell itself, run
whole on the same CPU clock with the extension's hooks off, so that a slower or busier machine
moves both alike.

In the same rounds, bugsnag-python's `notify()` and sentry-sdk's `capture_exception()` report the
same exception into no-op transports (the `bench` extra installs them). That leaves each with
what its real transport does on the caller's thread: bugsnag-python encodes the payload before
handing it over, sentry-sdk's HTTP transport serializes in its worker. The transports count
their calls, so that an early return cannot pass for speed. All of it runs in a fresh
interpreter: an extension loaded earlier in this one keeps its first endpoints, and the SDKs
install hooks of their own.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import (
    API_KEY,
    ROOT,
    CollectorProcess,
    Row,
    median,
    microseconds,
    milliseconds,
    run_python,
    thread_seconds,
    wall_seconds,
)

BATCH = 50
ROUNDS = 21
DEPTH = 20
TARGET_SHARE = 0.01  # of the CPU the cell that raised the error took, without the extension
TARGET_RATIO = 3.0

_CELL = f"""
def chain(depth):
    if depth == 1:
        raise ValueError("reached the bottom of the chain")
    return chain(depth - 1)

chain({DEPTH})
"""


def _bugsnag() -> tuple[Any, Any] | None:
    try:
        import bugsnag
        from bugsnag.delivery import Delivery
    except ImportError:
        return None

    class NoDelivery(Delivery):
        """Takes the encoded payload, as bugsnag-python's Delivery does, and sends nothing."""

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def deliver(self, config: Any, payload: Any, options: Any = None) -> None:
            self.calls += 1

        def deliver_sessions(self, config: Any, payload: Any, options: Any = None) -> None:
            pass

    delivery = NoDelivery()
    bugsnag.configure(api_key=API_KEY, asynchronous=False, delivery=delivery, auto_capture_sessions=False)
    return bugsnag.notify, delivery


def _sentry() -> tuple[Any, Any] | None:
    try:
        import sentry_sdk
        from sentry_sdk.transport import Transport
    except ImportError:
        return None

    class NoTransport(Transport):
        """Takes the envelope, as sentry-sdk's HttpTransport does, and sends nothing."""

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def capture_envelope(self, envelope: Any) -> None:
            self.calls += 1

    transport = NoTransport()
    # Without the default integrations: no dedupe (it would drop every report of the same
    # exception after the first), no excepthook, no logging or threading hooks.
    sentry_sdk.init(dsn="https://public@example.invalid/1", transport=transport, default_integrations=False)
    return sentry_sdk.capture_exception, transport


_CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from benchmarks.error_cost import measure_here
print(json.dumps(measure_here(Path({db!r}))))
"""


def measure(workdir: Path) -> list[Row]:
    with CollectorProcess(workdir / "collector") as collector:
        env = collector.env(workdir / "persistence")
        code = _CHILD.format(root=str(ROOT), db=str(collector.db))
        found: dict[str, Any] = run_python(code, env, timeout=300)
    journal_append = _journal_append(workdir / "journal-alone", found["body_bytes"])
    cost = found["cost"]
    share = cost / found["cell_cpu"]
    rows = [
        Row("raising cell (20 frames), whole run_cell: wall; CPU",
            f"{milliseconds(found['whole_cell'])}; {milliseconds(found['cell_cpu'])}", "", None),
        Row("reported error, extension's cost (CPU)", microseconds(cost), "", None),
        Row("  / the raising cell's CPU without the extension", f"{share * 100:.2f} %",
            f"≤ {TARGET_SHARE * 100:.0f} %", share <= TARGET_SHARE),
        Row(f"  of which its journal append ({found['body_bytes'] / 1024:.1f} kB) on this disk",
            microseconds(journal_append), "", None),
    ]
    theirs: dict[str, float] = found["sdks"]
    if not theirs:
        rows.append(Row("SDK comparison", "not installed (pip install -e '.[bench]')",
                        f"≥ {TARGET_RATIO:.0f}x cheaper", False))
    for name, seconds in theirs.items():
        ratio = seconds / cost
        rows.append(Row(f"{name} (CPU)", microseconds(seconds), "", None))
        rows.append(Row(f"  {name.split()[0]} / extension", f"{ratio:.1f}x",
                        f"≥ {TARGET_RATIO:.0f}x", ratio >= TARGET_RATIO))
    return rows


def measure_here(collector_db: Path) -> dict[str, Any]:
    """The measurement itself, in the child: the collector's endpoints are in the environment."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bugsnag_ipython")
    extension = shell._bugsnag_ipython
    client = extension.client
    events = shell.events

    def raising_cell() -> Any:
        with contextlib.redirect_stdout(io.StringIO()):  # the traceback IPython prints
            return shell.run_cell(_CELL, store_history=True)

    whole_cell = median([wall_seconds(raising_cell, 1) for _ in range(5)])
    result = raising_cell()
    error = result.error_in_exec
    assert isinstance(error, ValueError), result
    frames = 0
    traceback = error.__traceback__
    while traceback is not None:
        frames += traceback.tb_frame.f_code.co_name == "chain"
        traceback = traceback.tb_next
    assert frames == DEPTH, frames

    def one_cell() -> None:
        events.trigger("pre_run_cell", result.info)
        events.trigger("post_run_cell", result)

    @contextlib.contextmanager
    def hooks_off() -> Iterator[None]:
        cell_runs = extension.cell_runs
        events.unregister("pre_run_cell", cell_runs.pre_run_cell)
        events.unregister("post_run_cell", cell_runs.post_run_cell)
        try:
            yield
        finally:
            events.register("pre_run_cell", cell_runs.pre_run_cell)
            events.register("post_run_cell", cell_runs.post_run_cell)

    def detached() -> float:
        with hooks_off():
            return thread_seconds(one_cell, BATCH)

    def attached() -> float:
        return thread_seconds(one_cell, BATCH)

    def cell_without_extension() -> float:
        """The baseline: the raising cell itself on this thread's CPU clock, nothing reported."""
        with hooks_off():
            return thread_seconds(raising_cell, 1)

    cell_cpu = median([cell_without_extension() for _ in range(7)])

    sdks: dict[str, tuple[Any, Any]] = {}
    if (found := _bugsnag()) is not None:
        sdks["bugsnag-python notify()"] = found
    if (found := _sentry()) is not None:
        sdks["sentry-sdk capture_exception()"] = found
    session = client.current_session()
    unhandled_before = session.unhandled if session is not None else 0

    ours: list[float] = []
    theirs: dict[str, list[float]] = {name: [] for name in sdks}
    for index in range(ROUNDS):
        # Alternate the order, so that drift and the sender's catching up hit all alike.
        if index % 2:
            without_it, with_it = detached(), attached()
        else:
            with_it, without_it = attached(), detached()
        ours.append(with_it - without_it)
        for name, (report, _) in sdks.items():
            theirs[name].append(thread_seconds(lambda report=report: report(error), BATCH))

    session = client.current_session()
    reported = (session.unhandled if session is not None else 0) - unhandled_before
    assert reported == ROUNDS * BATCH, f"{reported} events reported, not {ROUNDS * BATCH}"
    for name, (_, sink) in sdks.items():
        assert sink.calls == ROUNDS * BATCH, f"{name}: its no-op transport got {sink.calls} calls"
    assert client.flush(60), "the events were not all delivered"
    shell.run_line_magic("unload_ext", "bugsnag_ipython")
    return {
        "whole_cell": whole_cell,
        "cell_cpu": cell_cpu,
        "cost": median(ours),
        "sdks": {name: median(seconds) for name, seconds in theirs.items()},
        "body_bytes": len(_last_event_body(collector_db)),
    }


def _last_event_body(db: Path) -> bytes:
    """The payload of the last event alone (the sender may have put it in a request with others)."""
    import json

    from bugsnag_ipython.collector.store import Store
    from bugsnag_ipython.report.payloads import encode

    with Store(db) as store:
        payload = json.loads(store.requests("events")[-1].body)
    return encode({**payload, "events": payload["events"][-1:]})


def _journal_append(root: Path, size: int) -> float:
    """CPU seconds of appending one payload of this size to an outbox journal, on this disk."""
    import time

    from bugsnag_ipython.delivery.outbox import Outbox
    from bugsnag_ipython.delivery.payload import Payload

    outbox = Outbox(root).open()
    journal = outbox.journal
    assert journal is not None
    payload = Payload("event", "http://127.0.0.1:9/notify", API_KEY, b"x" * size, time.time())
    try:
        idents: list[str] = []
        batches = []
        for _ in range(ROUNDS):
            batches.append(thread_seconds(lambda: idents.append(outbox.store(payload)[1].ident), BATCH))
            journal.settle(idents)  # delivered: the journal empties, as it does in a kernel
            idents.clear()
        return median(batches)
    finally:
        outbox.close()
