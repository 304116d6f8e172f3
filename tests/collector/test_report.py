"""The stability report over a known set of sessions and events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.collector import Store, build_report, format_report, format_report_json
from bugsnag_ipython.collector.validation import check_request

from .conftest import encode, event_payload, headers_for, session_payload


def _record(store: Store, kind: Any, payload: object) -> None:
    body = encode(payload)
    headers = headers_for(kind, body)
    verdict = check_request(kind, headers, body)
    assert verdict.accepted, verdict.reason
    store.record(kind, verdict.status, verdict.reason, headers, body, verdict.payload)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "report.sqlite")
    # Version 1.0.0: four sessions; s1 crashes twice, s2 has a handled error, s3 and s4 are
    # clean; one more crash happens outside any session.
    for session_id in ("s1", "s2", "s3", "s4"):
        _record(store, "sessions", session_payload(session_id, version="1.0.0"))
    _record(store, "events", event_payload(session_id="s1", version="1.0.0"))
    _record(store, "events", event_payload(session_id="s1", unhandled_count=2, version="1.0.0"))
    _record(
        store,
        "events",
        event_payload(
            session_id="s2",
            unhandled=False,
            handled_count=1,
            unhandled_count=0,
            version="1.0.0",
            error_class="ValueError",
            message="bad value",
        ),
    )
    _record(store, "events", event_payload(version="1.0.0", error_class="KeyError", message="'x'"))
    # Version 2.0.0: one session that crashes, and a crash naming a session never received.
    _record(store, "sessions", session_payload("s5", version="2.0.0"))
    _record(store, "events", event_payload(session_id="s5", version="2.0.0"))
    _record(store, "events", event_payload(session_id="ghost", version="2.0.0"))
    # No version at all: a handled event in development, no sessions.
    _record(
        store,
        "events",
        event_payload(unhandled=False, unhandled_count=0, version=None, stage="development"),
    )
    # A refused request shows in the request counts only.
    store.record("events", 400, "The body must be a JSON object.", {}, b"nope")
    return store


def test_figures_per_version_and_stage(store: Store) -> None:
    report = build_report(store)
    figures = [
        (
            g.app_version,
            g.release_stage,
            g.sessions,
            g.sessions_with_unhandled,
            g.stability_text,
            g.handled_events,
            g.unhandled_events,
            g.events_outside_sessions,
            g.events_in_unknown_sessions,
        )
        for g in report.groups
    ]
    assert figures == [
        (None, "development", 0, 0, "n/a", 1, 0, 1, 0),
        ("1.0.0", "production", 4, 1, "75.0%", 1, 3, 1, 0),
        ("2.0.0", "production", 1, 1, "0.0%", 0, 2, 0, 1),
    ]
    total = report.total
    assert (total.sessions, total.sessions_with_unhandled, total.stability_text) == (5, 2, "60.0%")
    assert (total.handled_events, total.unhandled_events) == (2, 5)
    assert (report.requests_received, report.requests_refused) == (13, 1)


def test_most_frequent_errors(store: Store) -> None:
    group = build_report(store).groups[1]
    assert [(e.error_class, e.message, e.count) for e in group.top_errors] == [
        ("ZeroDivisionError", "division by zero", 2),
        ("KeyError", "'x'", 1),
        ("ValueError", "bad value", 1),
    ]


def test_top_errors_stop_at_five(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        for index in range(7):
            _record(store, "events", event_payload(error_class=f"Error{index}"))
        assert len(build_report(store).groups[0].top_errors) == 5


def test_the_text_form_shows_the_figures(store: Store) -> None:
    text = format_report(build_report(store))
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("1.0.0"))
    assert row.split() == ["1.0.0", "production", "4", "1", "75.0%", "1", "3", "1", "0"]
    assert next(line for line in lines if line.startswith("(none)")).split()[2:5] == [
        "0",
        "0",
        "n/a",
    ]
    assert "60.0%" in next(line for line in lines if line.startswith("all"))
    assert "2  ZeroDivisionError: division by zero" in text
    assert "13 requests received, 1 refused" in text


def test_the_json_form(store: Store) -> None:
    data = json.loads(format_report_json(build_report(store)))
    assert data["groups"][1]["stability_percent"] == 75.0
    assert data["groups"][0]["stability_percent"] is None
    assert data["total"]["sessions"] == 5
    assert data["statuses"] == {"202": 12, "400": 1}


def test_an_empty_store(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        report = build_report(store)
    assert report.groups == ()
    assert report.total.stability_text == "n/a"
    assert "No sessions or events received yet." in format_report(report)


def _counted(version: str, stage: str, started: int) -> dict[str, Any]:
    """A server notifier's sessions payload: how many started in a minute, no ids."""
    payload = session_payload(version=version, stage=stage)
    del payload["sessions"]
    payload["sessionCounts"] = [{"startedAt": "2026-12-01T08:03:00", "sessionsStarted": started}]
    return payload


def _server_event(session_id: str | None, *, unhandled: bool = True) -> dict[str, Any]:
    """bugsnag-python's shape: the release stage on the event, `session` null outside one."""
    payload = event_payload(unhandled=unhandled, version="3.0.0")
    event = payload["events"][0]
    del event["app"]["releaseStage"]
    event["releaseStage"] = "staging"
    event["session"] = None
    if session_id is not None:
        event["session"] = {
            "id": session_id,
            "startedAt": "2026-12-01T08:03:00",
            "events": {"handled": 0 if unhandled else 1, "unhandled": 1 if unhandled else 0},
        }
    return payload


def test_sessions_counted_per_minute_count_and_their_crashes_count_against_them(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        _record(store, "sessions", _counted("3.0.0", "staging", 3))
        _record(store, "sessions", _counted("3.0.0", "staging", 2))
        # Two of the five counted sessions crash (one of them twice), one has a handled error.
        for session_id in ("a", "a", "b"):
            _record(store, "events", _server_event(session_id))
        _record(store, "events", _server_event("c", unhandled=False))
        _record(store, "events", _server_event(None))
        report = build_report(store)
        text = format_report(report)

    [group] = report.groups
    assert (group.app_version, group.release_stage) == ("3.0.0", "staging")
    assert (group.sessions, group.counted_sessions, group.sessions_with_unhandled) == (5, 5, 2)
    assert group.stability_text == "60.0%"
    assert (group.events_in_unknown_sessions, group.events_outside_sessions) == (0, 1)
    assert report.total.sessions == 5 and report.total.stability_text == "60.0%"
    row = next(line for line in text.splitlines() if line.startswith("3.0.0"))
    assert row.split()[:5] == ["3.0.0", "staging", "5", "2", "60.0%"]
    assert "Sessions include 5 counted per minute without ids (sessionCounts)." in text


def test_crashes_never_outnumber_the_sessions_counted(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        _record(store, "sessions", _counted("3.0.0", "staging", 1))
        for session_id in ("a", "b", "c"):
            _record(store, "events", _server_event(session_id))
        [group] = build_report(store).groups
    assert (group.sessions, group.sessions_with_unhandled, group.stability_text) == (1, 1, "0.0%")
