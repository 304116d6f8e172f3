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
import tracemalloc
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython import cli
from bugsnag_ipython.client import Client
from bugsnag_ipython.collector import build_report, format_report
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.notebook.status import panel_view, status_html, status_text
from bugsnag_ipython.report.trimming import MAX_PAYLOAD_BYTES
from tests.conftest import StartKernel
from tests.payloads import API_KEY, event_payload, post
from tests.stored import stored_payloads
from tests.waits import eventually

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
    assert kernel.flush(5) is True
    assert len(collector.store.events()) == 1


def test_the_extensions_log_lines_go_to_the_kernel_log_never_into_a_cell(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(**FAST)
    collector.script("notify", 401)  # refused: one warning, said while the next cell runs
    failing = kernel.execute("1/0")
    # The next cell lasts until the refusal is answered: the warning is said while it runs.
    waiting = kernel.execute("import bugsnag_ipython; bugsnag_ipython.flush(10); print('done')")
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

    def failed_attempt_shown() -> str | None:
        shown = kernel.execute("%bugsnag_session status").stdout
        return shown if "Last error" in shown else None

    status = eventually(failed_attempt_shown)
    assert status, "no failed attempt shown within 10 s"
    panel = kernel.evaluate(
        "__import__('bugsnag_ipython.notebook.status', fromlist=['x']).status_html("
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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@proxy.example.com:8443/notify", "https://***@proxy.example.com:8443/notify"),
        ("https://token@notify.example.com", "https://***@notify.example.com"),
        ("https://notify.example.com/notify?api_key=secret", "https://notify.example.com/notify?***"),
        ("https://notify.bugsnag.com", "https://notify.bugsnag.com"),
    ],
)
def test_every_shown_endpoint_goes_through_one_helper_that_hides_credentials(url: str, shown: str) -> None:
    from bugsnag_ipython.core.config import shown_host, shown_url, without_credentials
    from bugsnag_ipython.delivery.transport import plain_error

    assert shown_url(url) == shown
    assert "@" not in shown_host(url) and "pw" not in shown_host(url)
    error = ValueError(f"Invalid URL {url!r}: no host supplied")
    for text in (without_credentials(str(error)), plain_error(error)):
        assert "user:pw" not in text and "token@" not in text


def test_forked_workers_events_arrive_once_and_promptly(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
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
    assert collector.wait_for("events", 7, timeout=20)
    # The collector stamps arrivals in UTC with a "Z": an aware datetime, so no local-time rule
    # (daylight saving included) shifts the comparison with the kernel's time.time().
    arrived = max(datetime.fromisoformat(event.received_at).timestamp() for event in collector.store.events())
    # Promptly after the children ended, not at the outbox's next rescan (30 s): a loaded
    # machine can take seconds, never that long.
    assert arrived - ended < 10.0
    # Nothing is left to send, from the kernel or the children's files: no duplicate is coming.
    # flush() waits for the kernel's own payloads; the children's, adopted, are removed by the
    # keeper once their answer is in, a moment after the collector has them.
    assert kernel.evaluate("bugsnag_ipython.flush(10)") is True
    outbox = tmp_path / "outbox"
    assert eventually(lambda: stored_payloads(outbox) == []), stored_payloads(outbox)
    messages = sorted(event.message or "" for event in collector.store.events())
    assert messages == ["'from a forked child'", *(f"task {n}" for n in range(6))]
    assert kernel.alive


def test_a_child_forked_before_the_launch_session_is_sent_leaves_it_to_the_parent(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    # The launch session's payload is made a moment after the load, once the kernel is idle: a
    # child forked before then inherits it unsent, and a report in the child must not send it too
    # (one launch, counted twice, would halve the stability of a release that forks).
    kernel = start_kernel(**FAST)
    ran = kernel.execute(
        "import os, bugsnag_ipython\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    bugsnag_ipython.notify(KeyError('from a forked child'))\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    assert ran.status == "ok", ran.traceback
    assert collector.wait_for("events", 1, timeout=20)
    assert kernel.evaluate("bugsnag_ipython.flush(10)") is True
    outbox = tmp_path / "outbox"
    assert eventually(lambda: stored_payloads(outbox) == []), stored_payloads(outbox)
    sessions = collector.store.sessions()
    assert len(sessions) == 1, [session.session_id for session in sessions]
    assert collector.store.events()[0].session_id == sessions[0].session_id


# -- in the kernel's process: a client delivering to the real collector -------------------


@pytest.fixture
def client_for(
    collector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Clients that deliver to the collector through the real outbox, sender and HTTP."""
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        config = Configuration().replace(
            api_key=API_KEY,
            notify_endpoint=collector.notify_url,
            sessions_endpoint=collector.sessions_url,
            persistence_directory=str(tmp_path / "persistence"),
            **options,
        )
        client = Client(config)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown(0.5)


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def test_callbacks_that_break_the_event_have_it_repaired_counted_and_said_once(
    client_for: Any, collector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for()
    breakers = [
        lambda event: event.pop("exceptions"),
        lambda event: event["exceptions"][0].update(errorClass=5, stacktrace="frames"),
        lambda event: event.update(unhandled="yes", metaData=["not", "a", "tab"]),
        lambda event: event["exceptions"][0]["stacktrace"].append("a string"),
    ]
    with caplog.at_level(logging.WARNING, logger="bugsnag_ipython"):
        for breaker in breakers:
            client.on_error.add(breaker)
            assert client.notify(raised(ValueError("broken by a callback")))
            client.on_error.remove(breaker)
    assert client.flush(5)
    assert collector.wait_for("events", len(breakers))
    events = collector.store.events()
    # Each arrived: what a callback broke is put back, what it changed is kept, as a string.
    assert [e.error_class for e in events] == ["ValueError", "5", "ValueError", "ValueError"]
    assert {e.message for e in events} == {"broken by a callback"}
    assert all(e.event["exceptions"][0]["stacktrace"] for e in events)
    assert client.on_error.repaired == 4
    assert "4 repaired after an on_error callback broke them" in status_text(client)
    assert sum("on_error callback left an event" in r.getMessage() for r in caplog.records) == 1


def test_metadata_json_cannot_hold_and_odd_exceptions_still_make_events_bugsnag_takes(
    client_for: Any, collector: Any
) -> None:
    client = client_for()
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    client.metadata.add("training", {
        "loss": math.nan, "best": math.inf, "digits": 10**5000, "cyclic": cyclic,
        "path \udcff": "file \udcfe name", 3.5: "a float key",
    })
    assert client.notify(raised(SyntaxError("odd", ("f.py", "not a line", None, 7))))
    assert client.notify(raised(ValueError("x" * 5_000_000)))
    assert client.flush(5) and collector.wait_for("events", 2)
    first, second = collector.store.events()
    tab = first.event["metaData"]["training"]
    assert (tab["loss"], tab["best"], tab["digits"]) == ("nan", "inf", "<int of 16610 bits>")
    assert tab["path \ufffd"] == "file \ufffd name"
    assert first.error_class == "SyntaxError" and second.error_class == "ValueError"
    assert len(second.message or "") < 20_000  # the 5 MB message was cut, the event kept


def test_a_huge_user_name_is_cut_before_any_breadcrumb_is_dropped(client_for: Any, collector: Any) -> None:
    client = client_for()
    for n in range(20):
        client.leave_breadcrumb(f"step {n}")
    client.set_user("42", name="n" * 1_000_000)
    assert client.notify(raised(ValueError("with a long name")))
    assert client.flush(5) and collector.wait_for("events", 1)
    [event] = collector.store.events()
    names = [crumb["name"] for crumb in event.event["breadcrumbs"]]
    assert [f"step {n}" for n in range(20)] == [n for n in names if n.startswith("step")]
    assert len(event.event["user"]["name"]) < 11_000
    assert len(json.dumps(event.event)) < MAX_PAYLOAD_BYTES


# -- the outbox and the persistence directory ----------------------------------------------


def stored_elsewhere(directory: Path, message: str, *, size: int | None = None) -> Path:
    """A payload file, as a dead kernel would have left it, in another directory."""
    from bugsnag_ipython.delivery.payload import Payload
    from bugsnag_ipython.report import payloads
    from tests.stored import payload_file

    payload = event_payload(message=message)
    payload["apiKey"] = API_KEY
    body = payloads.encode(payload)
    path = payload_file(directory, Payload("event", "http://127.0.0.1:9/notify", API_KEY, body, time.time()))
    if size is not None:  # the header says `size` bytes, and the file is that long (sparse)
        header, _, _ = path.read_bytes().partition(b"\n")
        fixed = json.loads(header) | {"bytes": size}
        path.write_bytes(json.dumps(fixed).encode() + b"\n")
        os.truncate(path, len(path.read_bytes()) + size)
    return path


def test_a_tampered_outbox_is_neither_followed_nor_read_whole_and_what_is_set_aside_is_counted(
    client_for: Any, collector: Any, tmp_path: Path
) -> None:
    persistence = tmp_path / "persistence"
    outbox = persistence / "outbox"
    outbox.mkdir(parents=True)
    elsewhere = stored_elsewhere(tmp_path / "elsewhere", "a file someone else chose")
    (outbox / elsewhere.name.replace(elsewhere.name.split(".")[-2], "0123456789ab")).symlink_to(elsewhere)
    huge = stored_elsewhere(tmp_path / "big", "fifty megabytes", size=50_000_000)
    huge.rename(outbox / huge.name.replace(huge.name.split(".")[-2], "ba9876543210"))
    tracemalloc.start()  # before the client: its first look through the outbox is traced too
    try:
        client = client_for()
        assert client.delivery.drain(5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000  # the fifty megabytes were never read into memory
    assert collector.store.events() == []  # neither was sent
    assert client.delivery.stats.dropped["unreadable file set aside"] == 2
    assert len(os.listdir(persistence / "set-aside")) == 2
    assert elsewhere.read_bytes().endswith(b"}")  # the file the link pointed to is untouched
    assert "2 unreadable file set aside" in status_text(client)


def test_an_open_persistence_directory_is_made_private(
    client_for: Any, collector: Any, tmp_path: Path
) -> None:
    persistence = tmp_path / "persistence"
    persistence.mkdir(mode=0o777)
    os.chmod(persistence, 0o777)
    (persistence / "device-id").write_text("0123456789abcdef0123456789abcdef\n")
    os.chmod(persistence / "device-id", 0o644)
    client = client_for()
    assert client.notify(raised(ValueError("stored privately")))
    assert client.flush(5) and collector.wait_for("events", 1)
    assert os.stat(persistence).st_mode & 0o777 == 0o700
    assert os.stat(persistence / "device-id").st_mode & 0o777 == 0o600
    for folder in ("outbox", "owners", "set-aside"):
        assert os.stat(persistence / folder).st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user's needs root")
def test_a_persistence_directory_of_another_user_is_refused_and_delivery_works_from_memory(
    client_for: Any, collector: Any, tmp_path: Path
) -> None:
    persistence = tmp_path / "persistence"
    persistence.mkdir()
    os.chown(persistence, 12345, 12345)
    client = client_for()
    assert client.notify(raised(ValueError("delivered from memory")))
    assert client.flush(5) and collector.wait_for("events", 1)
    assert os.listdir(persistence) == []  # no device id, no outbox written into it
    status = status_text(client)
    assert f"Problem: The persistence directory {persistence} belongs to another user" in status
    assert "Problem" in dict(panel_view(client, None, wall_clock=time.time(),
                                        monotonic=time.monotonic()).delivery)
    assert "belongs to another user" in status_html(client)


# -- the collector -------------------------------------------------------------------------


@pytest.mark.sends_malformed
def test_the_collector_answers_any_unparsable_body_with_400_and_keeps_serving(collector: Any) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    assert post(collector.notify_url, "events", deep).status_code == 400
    nested: Any = "bottom"
    for _ in range(900):  # deep, but within what the parser takes
        nested = {"n": nested}
    payload = event_payload()
    payload["events"][0]["metaData"] = {"deep": nested}
    assert post(collector.notify_url, "events", payload).status_code in (202, 400)
    assert post(collector.notify_url, "events", event_payload()).status_code == 202
    with socket.create_connection(("127.0.0.1", collector.port), timeout=5):
        pass  # still listening


def test_the_collectors_report_writes_no_control_character_to_the_terminal(
    collector: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = event_payload(error_class="\x1b]0;pwned\x07Evil\u202eError", message="\x1b[2J\x1b[H\x9b")
    hostile["events"][0]["app"]["version"] = "1.0\x1b[31m"
    assert post(collector.notify_url, "events", hostile).status_code == 202
    text = format_report(build_report(collector.store))
    assert "Evil" in text and "\\x1b" in text
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in text)
    cli.main(["report", "--db", str(collector.store.path)])
    assert "\x1b" not in capsys.readouterr().out
