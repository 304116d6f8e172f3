"""Session tracking and error reporting in a real kernel, read back from the real collector."""

from __future__ import annotations

import ast
import hashlib
import json
import time
from typing import Any

from tests.conftest import StartKernel
from tests.payloads import API_KEY
from tests.waits import events_of, sessions_of

WAIT = 10.0


def test_launch_session_arrives_with_the_protocol_headers(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    assert collector.wait_for("sessions", 1, WAIT)
    [request] = collector.store.requests("sessions")
    assert request.status == 202
    assert request.header("Bugsnag-Api-Key") == API_KEY
    assert request.header("Bugsnag-Payload-Version") == "1.0"
    assert request.header("Content-Type") == "application/json"
    digest = hashlib.sha1(request.body.encode()).hexdigest()
    assert request.header("Bugsnag-Integrity") == f"sha1 {digest}"
    sent_at = request.header("Bugsnag-Sent-At") or ""
    assert sent_at.endswith("Z") and len(sent_at) == len("2026-12-01T08:03:42.123Z")
    payload = json.loads(request.body)
    assert payload["app"]["type"] == "jupyter"
    assert payload["notifier"]["name"] == "Bugsnag IPython"
    current = kernel.evaluate("__import__('bugsnag_ipython').current_session().id")
    assert sessions_of(collector) == [current]


def test_a_cell_error_is_an_unhandled_event_of_the_launch_session(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    failed = kernel.execute("1/0")
    assert failed.error_name == "ZeroDivisionError"
    assert collector.wait_for("events", 1, WAIT)
    [event] = events_of(collector)
    [launch] = sessions_of(collector)
    assert event.error_class == "ZeroDivisionError" and event.unhandled
    assert event.session_id == launch and event.session_unhandled == 1
    body = event.event
    assert body["severity"] == "error"
    assert body["severityReason"] == {"type": "unhandledException"}
    [request] = collector.store.requests("events")
    assert request.header("Bugsnag-Payload-Version") == "4.0"
    assert json.loads(request.body)["apiKey"] == API_KEY


def test_an_idle_gap_longer_than_the_timeout_starts_a_new_session(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(BUGSNAG_BACKGROUND_TIMEOUT="1")
    kernel.execute("x = 1")
    time.sleep(1.3)  # the kernel is idle between cells: background time
    kernel.execute("1/0")
    assert collector.wait_for("events", 1, WAIT) and collector.wait_for("sessions", 2, WAIT)
    first, second = sessions_of(collector)
    assert first != second
    [event] = events_of(collector)
    assert event.session_id == second and event.session_unhandled == 1


def test_a_cell_that_starts_soon_after_keeps_the_session(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(BUGSNAG_BACKGROUND_TIMEOUT="30")
    for _ in range(3):
        kernel.execute("x = 1")
    kernel.execute("1/0")
    assert collector.wait_for("events", 1, WAIT)
    assert kernel.flush() is True
    assert len(sessions_of(collector)) == 1


def test_an_error_while_paused_has_no_session_and_resume_continues_it(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    paused = kernel.execute("%bugsnag_session pause")
    assert "paused" in paused.stdout
    kernel.execute("raise ValueError('while paused')")
    assert kernel.evaluate("__import__('bugsnag_ipython').resume_session()") is True
    kernel.execute("raise KeyError('after resume')")
    assert collector.wait_for("events", 2, WAIT)
    [launch] = sessions_of(collector)
    while_paused, after = sorted(events_of(collector), key=lambda e: e.id)
    assert while_paused.error_class == "ValueError"
    assert while_paused.session_id is None and "session" not in while_paused.event
    assert after.session_id == launch
    assert after.session_unhandled == 1  # the paused error moved no counter


def test_resume_without_a_session_starts_one_and_returns_false(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(BUGSNAG_AUTO_TRACK_SESSIONS="false")
    assert kernel.evaluate("__import__('bugsnag_ipython').current_session()") is None
    assert kernel.evaluate("__import__('bugsnag_ipython').resume_session()") is False
    assert collector.wait_for("sessions", 1, WAIT)
    current = kernel.evaluate("__import__('bugsnag_ipython').current_session().id")
    assert sessions_of(collector) == [current]


def test_start_replaces_the_current_session(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    started = kernel.execute("%bugsnag_session start")
    assert "Started session" in started.stdout
    kernel.execute("1/0")
    assert collector.wait_for("sessions", 2, WAIT) and collector.wait_for("events", 1, WAIT)
    launch, replacement = sessions_of(collector)
    [event] = events_of(collector)
    assert event.session_id == replacement != launch


def test_automatic_tracking_off_sends_no_automatic_session(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(BUGSNAG_AUTO_TRACK_SESSIONS="0", BUGSNAG_BACKGROUND_TIMEOUT="0")
    kernel.execute("x = 1")
    kernel.execute("1/0")
    assert collector.wait_for("events", 1, WAIT)
    assert kernel.flush() is True
    assert sessions_of(collector) == []
    [event] = events_of(collector)
    assert event.session_id is None


def test_without_an_api_key_nothing_is_sent_until_one_is_configured(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(load=False, BUGSNAG_API_KEY="")
    loaded = kernel.execute("%load_ext bugsnag_ipython")
    assert loaded.status == "ok"
    assert "nothing will be sent" in loaded.text and loaded.text.count("\n") == 1
    kernel.execute("1/0")
    assert kernel.flush(1) is False  # held counts as left
    assert collector.store.requests() == []
    kernel.execute(f"import bugsnag_ipython; bugsnag_ipython.configure(api_key={API_KEY!r})")
    assert kernel.flush() is True
    [session] = sessions_of(collector)
    [event] = events_of(collector)
    assert event.error_class == "ZeroDivisionError" and event.session_id == session


def test_notify_is_a_handled_event(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    kernel.execute(
        "import bugsnag_ipython\n"
        "try:\n    int('x')\nexcept ValueError as error:\n    bugsnag_ipython.notify(error)"
    )
    kernel.execute("bugsnag_ipython.notify(RuntimeError('custom'), severity='info')")
    assert collector.wait_for("events", 2, WAIT)
    handled, custom = sorted(events_of(collector), key=lambda e: e.id)
    assert not handled.unhandled and handled.severity == "warning"
    assert handled.event["severityReason"] == {"type": "handledException"}
    assert handled.session_handled == 1 and handled.session_unhandled == 0
    assert custom.severity == "info"
    assert custom.event["severityReason"] == {"type": "userSpecifiedSeverity"}
    assert custom.session_handled == 2


def test_a_syntax_error_is_reported_and_an_interrupt_is_not(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    kernel.execute("raise KeyboardInterrupt")
    kernel.execute("%bugsnag_session nonsense")  # a UsageError: not reported either
    broken = kernel.execute("def f(:\n    pass")
    assert broken.error_name == "SyntaxError"
    assert collector.wait_for("events", 1, WAIT)
    assert kernel.flush() is True
    [event] = events_of(collector)
    assert event.error_class == "SyntaxError" and event.unhandled


def test_bad_options_get_one_sentence_and_no_traceback(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(load=False, BUGSNAG_BACKGROUND_TIMEOUT="soon")
    loaded = kernel.execute("%load_ext bugsnag_ipython")
    assert "BUGSNAG_BACKGROUND_TIMEOUT" in loaded.stderr and "Traceback" not in loaded.text
    refused = kernel.execute("import bugsnag_ipython; bugsnag_ipython.configure(api_key='oops')")
    assert refused.error_name == "ConfigurationError"
    assert len(refused.traceback) == 1 and "32 hexadecimal digits" in refused.traceback[0]
    magic = kernel.execute("%bugsnag_session flush soon")
    assert magic.status == "error" and magic.stderr.count("\n") == 1
    assert "UsageError" in magic.stderr and "Traceback" not in magic.text
    status = kernel.execute("%bugsnag_session status")
    assert "BUGSNAG_BACKGROUND_TIMEOUT" in status.stdout
    assert API_KEY not in status.stdout and API_KEY[-4:] in status.stdout
    shown = kernel.execute("%config BugsnagIPython")
    assert API_KEY not in shown.text
    assert kernel.flush() is True
    assert events_of(collector) == []  # refused options are never reported as errors


def test_config_magic_changes_options_from_then_on(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    kernel.execute("%config BugsnagIPython.app_version = '2.0.0'")
    refused = kernel.execute("%config BugsnagIPython.background_timeout = -5")
    assert "background_timeout" in refused.text and "Traceback" not in refused.text
    assert kernel.evaluate("get_ipython().config.BugsnagIPython.background_timeout") == -5  # asked
    assert "30s idle" in kernel.execute("%bugsnag_session status").stdout  # ...but not applied
    shown = kernel.execute("%config BugsnagIPython.api_key")
    assert API_KEY not in shown.text
    kernel.execute("1/0")
    assert collector.wait_for("events", 1, WAIT)
    [event] = events_of(collector)
    assert event.app_version == "2.0.0"
    assert kernel.evaluate("__import__('bugsnag_ipython').current_session() is not None") is True


def test_unload_removes_every_hook(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    kernel.execute("%unload_ext bugsnag_ipython")
    kernel.execute("1/0")
    hooks = kernel.evaluate(
        "[len(get_ipython().events.callbacks[e]) for e in ('pre_run_cell', 'post_run_cell')]"
        " + [__import__('threading').excepthook is __import__('threading').__excepthook__]"
    )
    assert hooks == [0, 0, True]
    missing = kernel.execute("%bugsnag_session status")
    assert "UsageError" in missing.stderr
    time.sleep(0.3)
    assert events_of(collector) == []


def test_reload_is_not_a_launch(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    before = kernel.evaluate("__import__('bugsnag_ipython').current_session().id")
    kernel.execute("%reload_ext bugsnag_ipython")
    after = kernel.evaluate("__import__('bugsnag_ipython').current_session().id")
    assert before == after
    assert kernel.flush() is True
    assert sessions_of(collector) == [before]
    assert kernel.evaluate("len(get_ipython().events.callbacks['post_run_cell'])") == 1


def test_loaded_by_kernel_config_it_is_silent_and_launches_before_any_cell(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(
        load=False, kernel_config="c.InteractiveShellApp.extensions = ['bugsnag_ipython']"
    )
    assert collector.wait_for("sessions", 1, WAIT)
    first = kernel.execute("1/0")
    assert "bugsnag_ipython" not in first.text
    assert collector.wait_for("events", 1, WAIT)
    [event] = events_of(collector)
    assert event.session_id == sessions_of(collector)[0]


def execute_silently(kernel: Any, code: str, **expressions: str) -> dict[str, Any]:
    """Run `code` as frontends run completions and inspections (`silent`: no cell, no history);
    the values of `expressions`, as the reply carries them."""
    msg_id = kernel.send(code, silent=True, user_expressions=expressions)
    while True:
        reply = kernel.client.get_shell_msg(timeout=WAIT)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    assert reply["content"]["status"] == "ok", reply["content"]
    return {name: ast.literal_eval(value["data"]["text/plain"])
            for name, value in reply["content"]["user_expressions"].items()}


def test_silent_executions_do_not_move_the_foreground(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(BUGSNAG_BACKGROUND_TIMEOUT="1")
    launch = kernel.evaluate("__import__('bugsnag_ipython').current_session().id")
    time.sleep(1.3)  # the kernel is idle between cells: background time
    # A silent run after the idle timeout is no return to the foreground: no new session.
    seen = execute_silently(kernel, "import bugsnag_ipython\nflushed = bugsnag_ipython.flush(10)",
                            session="bugsnag_ipython.current_session().id", flushed="flushed")
    assert seen == {"session": launch, "flushed": True}
    assert sessions_of(collector) == [launch]
    # Nor does it end the background: the cell right after it is the return, with a new session.
    kernel.execute("1/0")
    assert kernel.flush() is True
    first, returned = sessions_of(collector)
    assert first == launch and returned != launch
    [event] = events_of(collector)
    assert event.session_id == returned


def test_only_a_notify_endpoint_turns_sessions_off_with_one_warning(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(BUGSNAG_SESSIONS_ENDPOINT="")  # the notify endpoint alone
    kernel.execute("1/0")
    kernel.execute("import bugsnag_ipython\nbugsnag_ipython.configure(release_stage='staging')")
    kernel.execute("%reload_ext bugsnag_ipython")
    assert kernel.flush() is True
    shown = kernel.execute("%bugsnag_session status").stdout
    assert "sessions off" in shown
    assert "(off: notify_endpoint is set alone)" in kernel.execute("%config BugsnagIPython").stdout
    warning = "notify_endpoint is set without sessions_endpoint, so sessions are not sent"
    assert kernel.log().count(warning) == 1
    assert len(events_of(collector)) == 1
    assert collector.store.sessions() == [] and collector.store.requests("sessions") == []
