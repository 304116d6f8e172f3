"""The status panel, as a notebook user sees it: in a real kernel over the wire, and as text in
terminal IPython."""

from __future__ import annotations

import http.server
import json
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import KernelManager

import tests.kernel
from tests.payloads import API_KEY
from tests.waits import eventually, waited

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# -- a kernel driven like a frontend would ----------------------------------------------------


@dataclass
class Message:
    received: float
    msg: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.msg["msg_type"])

    @property
    def content(self) -> dict[str, Any]:
        return dict(self.msg["content"])


@dataclass
class Kernel:
    """A kernel of this venv with a private IPython profile, and every iopub message it sent."""

    manager: KernelManager
    client: Any
    messages: list[Message] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # comm id -> widget state

    def start_reader(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:
                return
            self.messages.append(Message(time.monotonic(), msg))
            content = msg["content"]
            if msg["msg_type"] == "comm_open":
                self.models[content["comm_id"]] = dict(content["data"].get("state", {}))
            elif msg["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
                self.models.setdefault(content["comm_id"], {}).update(content["data"]["state"])

    def execute(self, code: str, timeout: float = 15.0) -> list[Message]:
        """Run a cell; the iopub messages that answer it, once the kernel is idle again."""
        msg_id = self.client.execute(code)

        def answered() -> list[Message]:
            mine = [m for m in list(self.messages) if m.msg["parent_header"].get("msg_id") == msg_id]
            idle = any(m.type == "status" and m.content["execution_state"] == "idle" for m in mine)
            return mine if idle else []

        mine = eventually(answered, timeout)
        assert mine, f"cell did not finish in {timeout}s: {code!r}"
        return mine

    def value(self, expression: str) -> Any:
        replies = self.execute(f"import json as _j; print(_j.dumps({expression}))")
        text = "".join(m.content["text"] for m in replies if m.type == "stream")
        errors = [m.content for m in replies if m.type == "error"]
        assert not errors, errors
        return json.loads(text)

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """What `client.wait_for_ready` does, without reading iopub: the reader thread owns it,
        and a zmq socket read from two threads garbles messages (or aborts the process)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = self.client.kernel_info()
            try:
                while self.client.get_shell_msg(timeout=1.0)["parent_header"].get("msg_id") != msg_id:
                    pass
            except queue.Empty:
                continue
            # Its status messages on iopub too: the reader is subscribed to the new kernel.
            answered = [m for m in list(self.messages) if m.msg["parent_header"].get("msg_id") == msg_id]
            if any(m.type == "status" for m in answered):
                return
            time.sleep(0.1)
        raise AssertionError(f"the kernel was not ready within {timeout}s")

    def click(self, comm_id: str) -> None:
        """What a frontend sends when a Button view is clicked."""
        data = {"method": "custom", "content": {"event": "click"}}
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.client.shell_channel.send(msg)

    def wait_for(self, predicate: Any, timeout: float = 3.0) -> float:
        """Seconds until predicate() held, or fail after timeout."""
        return waited(predicate, timeout)


def start_kernel(tmp_path: Path, env: dict[str, str] | None = None) -> Kernel:
    """A kernel whose profile switches the installed auto-load off: these tests load the
    extension themselves. Its iopub is read by the reader thread from here on."""
    started = tests.kernel.Kernel(tmp_path / "kernel", {
        "BUGSNAG_PERSISTENCE_DIRECTORY": str(tmp_path / "outbox"), **(env or {})})
    kernel = Kernel(started.manager, started.client)
    kernel.start_reader()
    return kernel


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    kernel = start_kernel(tmp_path)
    yield kernel
    kernel.client.stop_channels()
    kernel.manager.shutdown_kernel(now=True)


def show_panel(kernel: Kernel, code: str = "%bugsnag_session") -> dict[str, Any]:
    replies = kernel.execute(code)
    assert not [m for m in replies if m.type == "error"]
    (shown,) = [m.content for m in replies if m.type == "display_data"]
    return dict(shown["data"])


def panel_parts(kernel: Kernel, root_id: str) -> dict[str, str]:
    """The comm ids of one panel's parts, found by the CSS classes its widgets carry."""
    parts: dict[str, str] = {}

    def walk(model_id: str) -> None:
        state = kernel.models.get(model_id, {})
        for css in state.get("_dom_classes", []):
            parts[css.removeprefix("bugsnag-")] = model_id
        for child in state.get("children", []):
            walk(child.removeprefix("IPY_MODEL_"))

    walk(root_id)
    return parts


def header(kernel: Kernel, parts: dict[str, str]) -> str:
    return str(kernel.models[parts["header"]]["value"])


def text_of(kernel: Kernel, parts: dict[str, str], part: str) -> str:
    return str(kernel.models[parts[part]]["value"])


def enabled(kernel: Kernel, parts: dict[str, str]) -> set[str]:
    return {name for name in ("start", "pause", "resume", "flush")
            if not kernel.models[parts[name]]["disabled"]}


# -- the tests ----------------------------------------------------------------------------------


def test_panel_displays_as_widget_with_readable_text(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    data = show_panel(kernel)

    assert data[WIDGET_VIEW]["model_id"] in kernel.models
    assert "Session: active" in data["text/plain"]
    assert "Panel(" not in data["text/plain"] and "VBox" not in data["text/plain"]
    assert "<table>" in data["text/html"] and "Session" in data["text/html"]
    parts = panel_parts(kernel, data[WIDGET_VIEW]["model_id"])
    assert "data-state='active'" in header(kernel, parts)
    assert enabled(kernel, parts) == {"start", "pause"}


def test_pause_in_another_cell_updates_panel_within_a_second(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    data = show_panel(kernel)
    parts = panel_parts(kernel, data[WIDGET_VIEW]["model_id"])
    second = panel_parts(kernel, show_panel(kernel, "import bugsnag_ipython; bugsnag_ipython.panel()")
                         [WIDGET_VIEW]["model_id"])

    kernel.execute("%bugsnag_session pause")
    took = kernel.wait_for(lambda: "data-state='paused'" in header(kernel, parts))

    assert took < 1.0
    kernel.wait_for(lambda: "data-state='paused'" in header(kernel, second), timeout=1.0)
    assert enabled(kernel, parts) == {"start", "resume"}


def test_buttons_do_what_the_magic_does(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    parts = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])
    first = kernel.value("__import__('bugsnag_ipython').current_session().id")

    kernel.click(parts["pause"])
    kernel.wait_for(lambda: "data-state='paused'" in header(kernel, parts))
    assert kernel.value("__import__('bugsnag_ipython').current_session().paused") is True

    kernel.click(parts["resume"])
    kernel.wait_for(lambda: "data-state='active'" in header(kernel, parts))
    assert kernel.value("__import__('bugsnag_ipython').current_session().paused") is False

    kernel.click(parts["start"])
    kernel.wait_for(lambda: first[:8] not in header(kernel, parts))
    assert kernel.value("__import__('bugsnag_ipython').current_session().id") != first
    assert "2 sessions started" in text_of(kernel, parts, "session")


def test_a_clicks_notice_goes_once_the_state_it_describes_has_changed(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    parts = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])
    kernel.click(parts["pause"])
    kernel.wait_for(lambda: "data-state='paused'" in header(kernel, parts))
    kernel.click(parts["resume"])
    resumed = kernel.value("__import__('bugsnag_ipython').current_session().id")[:8]
    kernel.wait_for(lambda: f"Resumed session {resumed}." in text_of(kernel, parts, "footer"))

    kernel.execute("%bugsnag_session start")  # a newer session, started elsewhere
    kernel.wait_for(lambda: resumed not in header(kernel, parts))
    assert "Resumed" not in text_of(kernel, parts, "footer")


def test_error_loop_sends_a_bounded_number_of_updates(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    parts = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])
    before = len(kernel.messages)

    kernel.execute(
        "import bugsnag_ipython, time\n"
        "for i in range(200):\n"
        "    bugsnag_ipython.notify(ValueError(i))\n"
        "    time.sleep(0.005)\n"  # spread over about a second, as a real loop would be
    )
    kernel.wait_for(lambda: "200 handled" in text_of(kernel, parts, "session"))
    time.sleep(0.3)

    updates = [m for m in kernel.messages[before:] if m.type == "comm_msg"]
    assert len(updates) < 40, f"{len(updates)} comm messages for 200 events"


def test_changes_from_another_thread_show_up(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    parts = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])

    kernel.execute(
        "import bugsnag_ipython, threading\n"
        "threading.Thread(target=lambda: bugsnag_ipython.notify(ValueError('from a thread'))).start()"
    )

    took = kernel.wait_for(lambda: "1 handled" in text_of(kernel, parts, "session"))
    assert took < 1.0


def test_panel_of_an_old_kernel_does_not_break_the_new_one(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    old = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])

    kernel.manager.restart_kernel(now=True)
    kernel.wait_until_ready()
    kernel.click(old["pause"])  # a click on the old panel's view reaches a kernel that never knew it
    kernel.execute("%load_ext bugsnag_ipython")
    new = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])
    kernel.click(new["pause"])

    kernel.wait_for(lambda: "data-state='paused'" in header(kernel, new))
    assert not [m for m in kernel.messages if m.type == "error"]


def test_flush_runs_in_the_background_and_reports_its_outcome(tmp_path: Path) -> None:
    with slow_collector(delay=0.6) as url:
        kernel = start_kernel(tmp_path, {
            "BUGSNAG_API_KEY": API_KEY,
            "BUGSNAG_NOTIFY_ENDPOINT": url,
            "BUGSNAG_SESSIONS_ENDPOINT": url,
        })
        try:
            kernel.execute("%load_ext bugsnag_ipython")
            parts = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])
            kernel.execute("import bugsnag_ipython\nfor i in range(3): bugsnag_ipython.notify(ValueError(i))")
            kernel.wait_for(lambda: "flush" in enabled(kernel, parts))

            kernel.click(parts["flush"])
            kernel.wait_for(lambda: "Flushing" in text_of(kernel, parts, "footer"))
            started = time.monotonic()
            assert kernel.value("1 + 1") == 2  # the kernel answers while the flush runs
            assert time.monotonic() - started < 0.5
            assert "flush" not in enabled(kernel, parts)

            kernel.wait_for(lambda: "everything was delivered" in text_of(kernel, parts, "footer"), 6)
            # 1 session, 3 events
            assert re.search(r"Delivered</td><td[^>]*>4<", text_of(kernel, parts, "delivery"))
        finally:
            kernel.client.stop_channels()
            kernel.manager.shutdown_kernel(now=True)


def closed_port_url() -> str:
    """An endpoint that refuses connections: a port bound a moment ago, and closed."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def countdown(kernel: Kernel, parts: dict[str, str]) -> int | None:
    found = re.search(r"next try in (\d+)s", text_of(kernel, parts, "delivery"))
    return int(found[1]) if found else None


def test_an_outage_turns_the_badge_amber_and_the_next_try_counts_down(tmp_path: Path) -> None:
    down = closed_port_url()
    kernel = start_kernel(tmp_path, {
        "BUGSNAG_API_KEY": API_KEY,
        "BUGSNAG_NOTIFY_ENDPOINT": down,
        "BUGSNAG_SESSIONS_ENDPOINT": down,
        # Waits of 30 to 60 s: long enough to watch a few seconds of it count down.
        "BUGSNAG_RETRY_BASE_SECONDS": "60",
        "BUGSNAG_RETRY_MAX_SECONDS": "60",
    })
    try:
        kernel.execute("%load_ext bugsnag_ipython")
        parts = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])
        before = text_of(kernel, parts, "delivery")
        kernel.execute("import bugsnag_ipython; bugsnag_ipython.notify(ValueError('offline'))")

        kernel.wait_for(lambda: "data-delivery='failing'" in header(kernel, parts), timeout=5)
        assert "data-state='active'" in header(kernel, parts)  # the session is still active
        assert "delivery failing" in header(kernel, parts) and "#e65100" in header(kernel, parts)
        kernel.wait_for(lambda: countdown(kernel, parts) is not None)
        first = countdown(kernel, parts)
        assert first is not None and 1 < first <= 60
        # It counts while nothing else happens: each second, one less.
        kernel.wait_for(lambda: countdown(kernel, parts) == first - 1, timeout=2.5)
        kernel.wait_for(lambda: countdown(kernel, parts) == first - 2, timeout=2.5)
        # The error's row was there before the error, with the same reserved height: the panel
        # does not grow when it fills.
        after = text_of(kernel, parts, "delivery")
        reserved = re.compile(r"<div class='bugsnag-last-error' style='[^']*height:3.9em")
        assert reserved.search(before) and reserved.search(after)
        assert before.count("<tr>") == after.count("<tr>")
        assert re.search(r"bugsnag-last-error[^>]*>none<", before)
        assert re.search(r"bugsnag-last-error[^>]*>Sending to 127\.0\.0\.1", after)
        layout = kernel.models[str(kernel.models[parts["delivery"]]["layout"]).removeprefix("IPY_MODEL_")]
        assert layout["width"] == "25em"
    finally:
        kernel.client.stop_channels()
        kernel.manager.shutdown_kernel(now=True)


def test_without_an_api_key_the_badge_is_red(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    parts = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])
    badge = header(kernel, parts)
    assert "data-delivery='stopped'" in badge and "#c62828" in badge
    assert "not sending: no API key" in badge


def test_panel_after_unload_says_so_without_traceback(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    parts = panel_parts(kernel, show_panel(kernel)[WIDGET_VIEW]["model_id"])

    kernel.execute("%unload_ext bugsnag_ipython")
    kernel.wait_for(lambda: "data-state='unloaded'" in header(kernel, parts), timeout=2.5)
    assert enabled(kernel, parts) == set()
    kernel.click(parts["start"])  # a stale click is harmless

    replies = kernel.execute("%load_ext bugsnag_ipython")
    assert not [m for m in replies if m.type == "error"]
    kernel.wait_for(lambda: "data-state='active'" in header(kernel, parts), timeout=2.5)
    assert not [m for m in kernel.messages if m.type == "error"]


def test_a_panel_the_widgets_cannot_build_is_the_status_text_without_traceback(kernel: Kernel) -> None:
    kernel.execute("%load_ext bugsnag_ipython")
    # A widgets library at odds with the panel's (here: its HTML widget refuses to be made).
    kernel.execute("import ipywidgets\nclass Broken(ipywidgets.HTML):\n"
                   "    def __init__(self, *a, **k): raise TypeError('unexpected keyword')\n"
                   "ipywidgets.HTML = Broken")
    replies = kernel.execute("%bugsnag_session")
    assert not [m for m in replies if m.type == "error"]
    printed = "".join(m.content.get("text", "") for m in replies if m.type == "stream")
    assert "Session" in printed and "API key" in printed


def test_terminal_ipython_prints_the_status_text(capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bugsnag_ipython")
    try:
        capsys.readouterr()
        shell.run_cell("%bugsnag_session")
        shell.run_cell("import bugsnag_ipython; bugsnag_ipython.panel()")
        out = capsys.readouterr().out
    finally:
        shell.run_line_magic("unload_ext", "bugsnag_ipython")

    assert out.count("BugSnag for this kernel") == 2
    assert "Session: active" in out
    assert "VBox" not in out and "Widget" not in out


# -- a collector that answers slowly ------------------------------------------------------------


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    delay = 0.0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.delay)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class slow_collector:
    def __init__(self, delay: float) -> None:
        handler = type("Handler", (_SlowHandler,), {"delay": delay})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_refresher_wakes_as_the_countdown_passes_each_second() -> None:
    from bugsnag_ipython.notebook.panel import COUNTDOWN_MARGIN, next_wake

    assert next_wake([]) is None  # no panel shown: it sleeps until one is
    assert next_wake([None]) == 1.0  # the panel's clock
    # A panel whose countdown is 3.4 shows "4s" until 0.4 s from now.
    assert next_wake([3.4]) == pytest.approx(0.4 + COUNTDOWN_MARGIN)
    assert next_wake([0.0]) == 1.0  # "trying now": the delivery's own change wakes it next
