"""The collector takes what BugSnag takes from the official notifiers, over real HTTP.

bugsnag-python itself runs against it; bugsnag-js and bugsnag-android requests are replayed as
those notifiers build them (notifier_payloads.py says from which of their source files).
"""

from __future__ import annotations

import contextvars
import functools
import sys
import uuid
from collections.abc import Callable
from typing import Any

from bugsnag_ipython.collector import Collector, build_report, format_report
from tests.payloads import post

from . import notifier_payloads as shaped


def in_fresh_context(test: Callable[[Collector], None]) -> Callable[[Collector], None]:
    """bugsnag-python keeps the current session in a context variable: one test's session
    must not be another's."""

    @functools.wraps(test)
    def run(collector: Collector) -> None:
        contextvars.Context().run(test, collector)

    return run


def python_notifier(collector: Collector, **options: Any) -> Any:
    """The real bugsnag-python client, sending to the collector at once, hooking nothing."""
    import bugsnag

    return bugsnag.Client(
        api_key=shaped.API_KEY,
        endpoint=collector.notify_url,
        session_endpoint=collector.sessions_url,
        asynchronous=False,
        auto_capture_sessions=False,
        install_sys_hook=False,
        **options,
    )


@in_fresh_context
def test_bugsnag_python_sessions_and_events_are_taken_and_reported(collector: Collector) -> None:
    client = python_notifier(collector, release_stage="staging", app_version="2.0.0")
    tracker = client.session_tracker
    # No 30 s timer thread and no atexit hook: the test sends the counted sessions itself.
    tracker.auto_sessions = True

    tracker.start_session()
    try:
        {}["missing"]
    except KeyError as error:
        client.notify(error)  # handled, in the first session
    tracker.start_session()
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        client.excepthook(*sys.exc_info())  # unhandled, in the second session
    tracker.send_sessions(asynchronous=False)

    sessions_request = collector.store.requests("sessions")[-1]
    assert sessions_request.status == 202, sessions_request.reason
    assert sessions_request.header("Bugsnag-Payload-Version") == "4.0"  # python's quirk
    assert sessions_request.header("Bugsnag-Integrity") is None
    assert [r.status for r in collector.store.requests("events")] == [202, 202]
    # It sends the sessions counted so far before each event, so that they arrive first.
    counts = collector.store.session_counts()
    assert sum(count.sessions_started for count in counts) == 2
    assert {(count.app_version, count.release_stage) for count in counts} == {("2.0.0", "staging")}
    handled, unhandled = collector.store.events()
    assert (handled.error_class, handled.unhandled, handled.release_stage) == ("KeyError", False, "staging")
    assert (unhandled.error_class, unhandled.unhandled) == ("ZeroDivisionError", True)
    assert handled.session_id != unhandled.session_id

    [group] = build_report(collector.store).releases
    assert (group.app_version, group.release_stage) == ("2.0.0", "staging")
    assert (group.sessions, group.sessions_with_unhandled, group.stability_text) == (2, 1, "50.0%")
    assert (group.handled_events, group.unhandled_events, group.events_in_unknown_sessions) == (1, 1, 0)


@in_fresh_context
def test_bugsnag_python_outside_a_session(collector: Collector) -> None:
    client = python_notifier(collector, release_stage="production")
    client.notify(ValueError("never raised"))
    [request] = collector.store.requests("events")
    assert request.status == 202, request.reason
    [event] = collector.store.events()
    assert (event.session_id, event.release_stage, event.app_version) == (None, "production", None)


def test_bugsnag_js_in_a_browser(collector: Collector) -> None:
    crashed, clean = str(uuid.uuid4()), str(uuid.uuid4())
    for session_id in (crashed, clean):
        headers, body = shaped.js_browser_session(session_id, version="7.1", stage="production")
        response = post(collector.sessions_url, "sessions", body, headers=headers)
        assert response.status_code == 202, response.text
    session = {
        "id": crashed,
        "startedAt": "2026-12-01T08:03:42.123Z",
        "events": {"handled": 0, "unhandled": 1},
    }
    event = shaped.js_event(
        runtime="browserjs", version="7.1", stage="production", session=session, unhandled=True
    )
    headers, body = shaped.js_notify(event, node=False)
    response = post(collector.notify_url, "events", body, headers=headers)
    assert response.status_code == 202, response.text

    [stored] = collector.store.events()
    assert (stored.error_class, stored.session_id, stored.api_key) == ("TypeError", crashed, shaped.API_KEY)
    assert stored.message == "Cannot read properties of undefined (reading 'naïve')"
    [group] = build_report(collector.store).releases
    assert (group.app_version, group.sessions, group.sessions_with_unhandled) == ("7.1", 2, 1)


def test_bugsnag_js_on_node_counts_its_sessions(collector: Collector) -> None:
    counts = [("2026-12-01T08:03:00.000Z", 3), ("2026-12-01T08:04:00.000Z", 1)]
    headers, body = shaped.js_node_session_counts(counts, stage="production")
    response = post(collector.sessions_url, "sessions", body, headers=headers)
    assert response.status_code == 202, response.text
    session = {
        "id": "c2ab-1",
        "startedAt": "2026-12-01T08:03:10.000Z",
        "events": {"handled": 0, "unhandled": 1},
    }
    for handled in (False, True):
        event = shaped.js_event(
            runtime="nodejs", version=None, stage="production", session=session, unhandled=not handled
        )
        headers, body = shaped.js_notify(event, node=True)
        response = post(collector.notify_url, "events", body, headers=headers)
        assert response.status_code == 202, response.text

    report = build_report(collector.store)
    [group] = report.releases
    assert (group.app_version, group.release_stage) == (None, "production")
    assert (group.sessions, group.counted_sessions, group.sessions_with_unhandled) == (4, 4, 1)
    assert group.stability_text == "75.0%"
    assert "Sessions include 4 counted per minute without ids (sessionCounts)." in format_report(report)


def test_bugsnag_android(collector: Collector) -> None:
    for session_id in ("a-1", "a-2", "a-3"):
        headers, body = shaped.android_session(session_id)
        response = post(collector.sessions_url, "sessions", body, headers=headers)
        assert response.status_code == 202, response.text
    headers, body = shaped.android_event("a-2", unhandled=1)
    response = post(collector.notify_url, "events", body, headers=headers)
    assert response.status_code == 202, response.text

    [request] = collector.store.requests("events")
    assert request.header("Bugsnag-Stacktrace-Types") == "android"
    [event] = collector.store.events()
    assert (event.error_class, event.session_id, event.session_unhandled) == (
        "java.lang.IllegalStateException",
        "a-2",
        1,
    )
    assert event.event["threads"][0]["name"] == "main"
    [group] = build_report(collector.store).releases
    assert (group.app_version, group.release_stage, group.sessions) == ("5.2.0", "production", 3)
    assert group.stability_text == "66.7%"


def test_a_replayed_request_whose_body_changed_on_the_way_is_refused(collector: Collector) -> None:
    headers, body = shaped.android_event("a-1", unhandled=1)
    response = post(collector.notify_url, "events", body.replace(b"cart", b"kart"), headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "The Bugsnag-Integrity digest does not match the SHA-1 of the body."
    assert collector.store.events() == []
