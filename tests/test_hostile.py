"""Hostile input, as a hostile tester would try it: exceptions that misbehave, metadata JSON
cannot hold, callbacks that break the event, a tampered outbox, a shared disk, credentials in
an endpoint, forked children and abuse of the collector.

Each test asserts what a user would notice: the cell behaves as it does without the extension,
the kernel stays alive, nothing is lost, and nothing leaks. Real kernels and the real
collector wherever the behaviour crosses them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython import cli
from bugsnag_ipython.client import Client
from bugsnag_ipython.collector.report import build_report, format_report
from bugsnag_ipython.config import Configuration
from bugsnag_ipython.notebook.panel_text import fallback_text, panel_view
from bugsnag_ipython.notebook.status import status_text
from bugsnag_ipython.report.trimming import MAX_PAYLOAD_BYTES
from tests.conftest import StartKernel
from tests.kernel import API_KEY, Kernel

FAST = {"BUGSNAG_RETRY_BASE_SECONDS": "0.05", "BUGSNAG_RETRY_MAX_SECONDS": "0.4"}

# Exception classes a notebook can define, each misbehaving in its own way.
HOSTILE_CLASSES = '''
class NumberedMeta(type):
    def __getattribute__(cls, name):
        return 42 if name == "__qualname__" else super().__getattribute__(name)
class Numbered(Exception, metaclass=NumberedMeta): pass

class RaisingMeta(type):
    @property
    def __module__(cls):
        raise RuntimeError("no module for you")
class Modless(Exception, metaclass=RaisingMeta): pass

class UnhashableMeta(type):
    def __eq__(cls, other):
        return False
    __hash__ = None
class Unhashable(Exception, metaclass=UnhashableMeta): pass

class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no message for you")
'''
HOSTILE_CELLS = {
    "Numbered": "raise Numbered('n')",
    "Modless": "raise Modless('m')",
    "Unhashable": "raise Unhashable('u')",
    "BadStr": "raise BadStr()",
    "ValueError": "raise ValueError('bad \\udc80 byte')",
    "RecursionError": "def f(): f()\nf()",
}


def shown(result: Any) -> tuple[str, str | None]:
    """What the user sees of a cell that failed: its status and the error's name."""
    return result.status, result.error_name


def test_exceptions_whose_class_misbehaves_are_reported_and_the_cells_look_as_without_us(
    start_kernel: StartKernel, collector: Any
) -> None:
    plain = start_kernel(load=False)
    ours = start_kernel()
    for kernel in (plain, ours):
        assert kernel.execute(HOSTILE_CLASSES).status == "ok"
    seen = set()
    for name, cell in HOSTILE_CELLS.items():
        without, with_us = plain.execute(cell), ours.execute(cell)
        assert shown(with_us) == shown(without), name
        seen.add(without.error_name)
        assert with_us.stderr == without.stderr, name  # nothing of ours in the cell
    assert ours.execute("1 + 1").status == "ok" and ours.alive
    assert collector.wait_for("events", len(HOSTILE_CELLS), timeout=15)
    # Every error the user saw arrived, with a readable name whatever its class made of its
    # name (BadStr's __str__ raises while IPython shows it: the user sees that RuntimeError).
    reported = {event.error_class: event.message for event in collector.store.events()}
    assert set(reported) == seen == set(HOSTILE_CELLS) - {"BadStr"} | {"RuntimeError"}
    assert reported["ValueError"] == "bad \ufffd byte"  # U+FFFD, as the README says


def test_an_interrupt_while_ipython_shows_the_error_reports_the_error_the_cell_raised(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    # An interrupt that lands inside IPython's own showtraceback (the function is compiled
    # under IPython's file name, as the real one is), twice: it escapes run_cell.
    patched = kernel.execute(
        "import IPython.core.interactiveshell as _s\n"
        "_ns = {}\n"
        "exec(compile('def showtraceback(*a, **k):\\n    raise KeyboardInterrupt', "
        "_s.__file__, 'exec'), _ns)\n"
        "_shell = get_ipython(); _original = _shell.showtraceback\n"
        "_shell.showtraceback = _ns['showtraceback']\n"
    )
    assert patched.status == "ok"
    kernel.execute("1/0")
    assert kernel.execute("_shell.showtraceback = _original").status == "ok"
    assert collector.wait_for("events", 1, timeout=10)
    [event] = collector.store.events()
    assert (event.error_class, event.unhandled) == ("ZeroDivisionError", True)
    # An interrupt of the user's own code stays the user's: not reported.
    kernel.execute("try:\n    1/0\nexcept ZeroDivisionError:\n    raise KeyboardInterrupt")
    assert kernel.evaluate("__import__('bugsnag_ipython').flush(5)") is True
    assert len(collector.store.events()) == 1


def test_the_extensions_log_lines_go_to_the_kernel_log_never_into_a_cell(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(**FAST)
    collector.script("notify", 401)  # refused: one warning, said while the next cell runs
    failing = kernel.execute("1/0")
    waiting = kernel.execute("import time; time.sleep(1.5); print('done')")
    assert "BugSnag rejected the API key" not in failing.text + waiting.text
    assert waiting.stderr == ""
    assert "[bugsnag_ipython] BugSnag rejected the API key (HTTP 401)" in kernel.log()
    assert "Problem" not in kernel.execute("%bugsnag_session status").stdout


def test_credentials_in_an_endpoint_are_never_shown(
    start_kernel: StartKernel, collector: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cr3t-passw0rd"
    url = collector.notify_url.replace("http://", f"http://proxyuser:{secret}@")
    collector.go_down()  # the failure is said, with the endpoint's host, in status and panel
    kernel = start_kernel(
        BUGSNAG_NOTIFY_ENDPOINT=url,
        BUGSNAG_SESSIONS_ENDPOINT=url.replace("/notify", "/sessions"),
        **FAST,
    )
    kernel.execute("1/0")
    time.sleep(1.0)
    status = kernel.execute("%bugsnag_session status").stdout
    panel = kernel.evaluate(
        "__import__('bugsnag_ipython.notebook.panel_text', fromlist=['x']).fallback_html("
        "get_ipython()._bugsnag_ipython.client)"
    )
    config = kernel.execute("%config BugsnagIPython").stdout + kernel.execute(
        "%config BugsnagIPython.notify_endpoint"
    ).stdout
    kernel.shutdown()
    assert "Sending to 127.0.0.1" in status and "failed" in status  # the failure is said...
    cli.main(["outbox", "--dir", str(tmp_path / "outbox")])
    listing = capsys.readouterr().out
    assert "event" in listing and "***@127.0.0.1" in listing
    for text in (status, panel, config, listing, kernel.log()):
        assert secret not in text and "proxyuser" not in text  # ...and no credential leaks


def test_forked_workers_events_arrive_once_and_promptly(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(**FAST)
    ran = kernel.execute(
        "import multiprocessing, os, time, bugsnag_ipython\n"
        "def work(n):\n"
        "    try:\n"
        "        raise ValueError(f'task {n}')\n"
        "    except ValueError as error:\n"
        "        bugsnag_ipython.notify(error)\n"
        "    return n\n"
        "with multiprocessing.get_context('fork').Pool(2) as pool:\n"
        "    print(sum(pool.map(work, range(6))))\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        "        raise KeyError('from a forked child')\n"
        "    except KeyError as error:\n"
        "        bugsnag_ipython.notify(error)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "ended = time.time()\n"
    )
    assert ran.status == "ok" and ran.stdout.strip() == "15", ran.traceback
    ended = kernel.evaluate("ended")
    assert collector.wait_for("events", 7, timeout=10)
    arrived = max(
        time.mktime(time.strptime(event.received_at[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        for event in collector.store.events()
    )
    assert arrived - ended < 3.0  # promptly after the children ended, not at a rescan
    time.sleep(1.0)  # a duplicate, if one were coming
    messages = sorted(event.message or "" for event in collector.store.events())
    assert messages == ["'from a forked child'", *(f"task {n}" for n in range(6))]
    assert kernel.alive
