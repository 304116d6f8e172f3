"""The stability report over a known set of sessions, events and builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.collector import (
    Store,
    build_report,
    check_request,
    format_report,
    format_report_json,
)
from tests.payloads import build_payload, encode, event_payload, headers_for, session_payload


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


def test_figures_per_release_in_the_order_releases_appeared(store: Store) -> None:
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
            g.change_text,
        )
        for g in report.releases
    ]
    assert figures == [
        ("1.0.0", "production", 4, 1, "75.0%", 1, 3, 1, 0, ""),
        ("2.0.0", "production", 1, 1, "0.0%", 0, 2, 0, 1, "-75.0 pp"),
        (None, "development", 0, 0, "n/a", 1, 0, 1, 0, ""),
    ]
    total = report.total
    assert (total.sessions, total.sessions_with_unhandled, total.stability_text) == (5, 2, "60.0%")
    assert (total.handled_events, total.unhandled_events) == (2, 5)
    assert (report.requests_received, report.requests_refused) == (13, 1)


def test_most_frequent_errors_then_the_first_seen(store: Store) -> None:
    release = build_report(store).releases[0]
    assert [(e.error_class, e.message, e.count, e.where) for e in release.top_errors] == [
        ("ZeroDivisionError", "division by zero", 2, "<cell 3>:3 in <module>"),
        ("ValueError", "bad value", 1, "<cell 3>:3 in <module>"),
        ("KeyError", "'x'", 1, "<cell 3>:3 in <module>"),
    ]
    assert release.more_errors == 0


def test_a_cut_list_says_how_many_more(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        for index in range(7):
            _record(store, "events", event_payload(error_class=f"Error{index}"))
        report = build_report(store)
    [release] = report.releases
    assert (len(release.top_errors), release.more_errors) == (5, 2)
    assert (len(release.new_errors), release.more_new_errors) == (5, 2)
    assert (len(report.total.top_errors), report.total.more_errors) == (5, 2)
    text = format_report(report)
    assert text.count("and 2 more") == 2  # the release's new errors, and all releases' top


def test_the_text_form_shows_the_figures(store: Store) -> None:
    text = format_report(build_report(store))
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("1.0.0"))
    assert row.split() == ["1.0.0", "production", "4", "1", "75.0%", "1", "3", "1", "0"]
    row = next(line for line in lines if line.startswith("2.0.0"))
    assert row.split() == ["2.0.0", "production", "1", "1", "0.0%", "-75.0", "pp", "0", "2", "0", "1"]
    assert next(line for line in lines if line.startswith("(none)")).split()[2:5] == [
        "0",
        "0",
        "n/a",
    ]
    assert "60.0%" in next(line for line in lines if line.startswith("all"))
    assert "2  ZeroDivisionError at <cell 3>:3 in <module>: division by zero" in text
    assert "13 requests received, 1 refused" in text
    # The columns a reader could misread are explained, one line each.
    legend = lines[lines.index("Columns") + 1 :]
    assert [line.split("  ")[1].strip() for line in legend][-2:] == ["no session", "unknown session"]
    assert "no session ran" in legend[-2] and "never received" in legend[-1]
    assert max(len(line) for line in lines) <= 100


def test_the_json_form(store: Store) -> None:
    data = json.loads(format_report_json(build_report(store)))
    assert data["releases"][0]["stability_percent"] == 75.0
    assert data["releases"][1]["stability_change_points"] == -75.0
    assert data["releases"][2]["stability_percent"] is None
    assert data["releases"][0]["new_errors"][0] == {
        "error_class": "ZeroDivisionError",
        "location": {"file": "<cell 3>", "method": "<module>", "line": 3},
        "message": "division by zero",
        "count": 2,
    }
    assert data["total"]["sessions"] == 5
    assert data["statuses"] == {"202": 12, "400": 1}


def test_an_empty_store(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        report = build_report(store)
    assert report.releases == ()
    assert report.total.stability_text == "n/a"
    assert "No sessions, events or builds received yet." in format_report(report)


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

    [group] = report.releases
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
        [group] = build_report(store).releases
    assert (group.sessions, group.sessions_with_unhandled, group.stability_text) == (1, 1, "0.0%")


def _frame(file: str, method: str, line: int | None, in_project: bool = True) -> dict[str, Any]:
    frame: dict[str, Any] = {"file": file, "method": method, "inProject": in_project}
    if line is not None:
        frame["lineNumber"] = line
    return frame


def _error(
    error_class: str, message: str, frames: list[dict[str, Any]], version: str = "1.0"
) -> dict[str, Any]:
    payload = event_payload(error_class=error_class, message=message, version=version)
    payload["events"][0]["exceptions"][0]["stacktrace"] = frames
    return payload


def test_errors_are_grouped_by_class_and_top_in_project_frame_never_by_message(tmp_path: Path) -> None:
    library = _frame("/usr/lib/python3/site-packages/pandas/io.py", "read_csv", 811, in_project=False)
    cell = _frame("notebook.ipynb [cell 4]", "<module>", 2)
    with Store(tmp_path / "db.sqlite") as store:
        # Two kernel deaths in different runs of the same cell: one error, whatever the message.
        _record(store, "events", _error("KernelDied", "The kernel died in In [14]", [cell]))
        _record(store, "events", _error("KernelDied", "The kernel died in In [15]", [cell]))
        # Raised inside a library, called from the cell: placed at the cell's frame.
        _record(store, "events", _error("KernelDied", "died again", [library, cell]))
        # The same class elsewhere is another error.
        elsewhere = [{**cell, "lineNumber": 9}]
        _record(store, "events", _error("KernelDied", "The kernel died in In [16]", elsewhere))
        # No line number: file and method place it; no in-project frame: the top frame does;
        # no frames at all: the class alone.
        _record(store, "events", _error("OSError", "a", [_frame("helpers.py", "load", None)]))
        _record(store, "events", _error("OSError", "b", [_frame("helpers.py", "load", None)]))
        _record(store, "events", _error("MemoryError", "", [library]))
        _record(store, "events", _error("Timeout", "x", []))
        _record(store, "events", _error("Timeout", "y", []))
        [release] = build_report(store).releases

    assert [(e.error_class, e.where, e.message, e.count) for e in release.top_errors] == [
        ("KernelDied", "notebook.ipynb [cell 4]:2 in <module>", "The kernel died in In [14]", 3),
        ("OSError", "helpers.py in load", "a", 2),
        ("Timeout", "no stack frame", "x", 2),
        ("KernelDied", "notebook.ipynb [cell 4]:9 in <module>", "The kernel died in In [16]", 1),
        ("MemoryError", "/usr/lib/python3/site-packages/pandas/io.py:811 in read_csv", "", 1),
    ]


def test_new_errors_are_the_ones_first_seen_in_the_release(tmp_path: Path) -> None:
    cell = _frame("analysis.ipynb [cell 2]", "<module>", 5)
    with Store(tmp_path / "db.sqlite") as store:
        _record(store, "events", _error("ZeroDivisionError", "division by zero", [cell], version="1.0"))
        _record(store, "events", _error("ZeroDivisionError", "division by zero", [cell], version="1.1"))
        _record(store, "events", _error("KeyError", "'price'", [cell], version="1.1"))
        _record(store, "events", _error("ZeroDivisionError", "again", [cell], version="1.0"))
        report = build_report(store)
        text = format_report(report)

    first, second = report.releases
    assert [(e.error_class, e.count) for e in first.new_errors] == [("ZeroDivisionError", 2)]
    assert [(e.error_class, e.count) for e in second.new_errors] == [("KeyError", 1)]
    assert [e.error_class for e in second.top_errors] == ["ZeroDivisionError", "KeyError"]
    section = text[text.index("Builds and new errors") : text.index("Most frequent errors")]
    assert section.splitlines()[1:] == [
        "  1.0 / production",
        "        2  ZeroDivisionError at analysis.ipynb [cell 2]:5 in <module>: division by zero",
        "  1.1 / production",
        "        1  KeyError at analysis.ipynb [cell 2]:5 in <module>: 'price'",
        "",
    ]


def test_stability_changes_against_the_release_before_in_the_same_stage(tmp_path: Path) -> None:
    def sessions(version: str, stage: str, total: int, crashed: int) -> None:
        for number in range(total):
            session_id = f"{version}-{stage}-{number}"
            _record(store, "sessions", session_payload(session_id, version=version, stage=stage))
            if number < crashed:
                _record(store, "events", event_payload(session_id=session_id, version=version, stage=stage))

    with Store(tmp_path / "db.sqlite") as store:
        # Not in version order: a hotfix branch's 2.0.1 arrives before 1.9.
        sessions("2.0.1", "production", 4, 2)
        sessions("1.9", "production", 4, 1)
        sessions("1.9", "staging", 2, 2)
        _record(store, "events", event_payload(version="2.1", stage="production"))  # no sessions yet
        sessions("2.2", "production", 5, 0)
        report = build_report(store)

    assert [(r.app_version, r.release_stage, r.stability_text, r.change_text) for r in report.releases] == [
        ("2.0.1", "production", "50.0%", ""),
        ("1.9", "production", "75.0%", "+25.0 pp"),
        ("1.9", "staging", "0.0%", ""),  # the first staging release: nothing to compare with
        ("2.1", "production", "n/a", ""),
        ("2.2", "production", "100.0%", "+25.0 pp"),  # against 1.9, the last with sessions
    ]


def test_builds_name_their_release_s_revision_and_builder(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        # A build reported before the release's first session (as before a scheduled run).
        _record(store, "builds", build_payload("1.0", revision="a" * 40, builder="old"))
        _record(store, "builds", build_payload("1.0", revision="b" * 40, builder="alice"))
        _record(store, "sessions", session_payload("s1", version="0.9"))
        _record(store, "sessions", session_payload("s2", version="1.0"))
        # A build without a stage belongs to every stage of its version.
        _record(store, "sessions", session_payload("s3", version="1.1", stage="staging"))
        _record(store, "builds", build_payload("1.1", stage=None, revision=None, builder="bob"))
        # A build for a version nothing else named yet is a release with no sessions so far.
        _record(store, "builds", build_payload("1.2", revision="c" * 40))
        report = build_report(store)
        text = format_report(report)
        data = json.loads(format_report_json(report))

    releases = [(r.app_version, r.release_stage, r.sessions) for r in report.releases]
    assert releases == [("1.0", "production", 1), ("0.9", "production", 1), ("1.1", "staging", 1),
                        ("1.2", "production", 0)]
    builds = [r.build for r in report.releases]
    assert builds[1] is None
    assert builds[0] is not None and (builds[0].revision, builds[0].builder_name) == ("b" * 40, "alice")
    assert builds[2] is not None and (builds[2].revision, builds[2].builder_name) == (None, "bob")
    assert "  1.0 / production: build bbbbbbbbbbbb by alice" in text.splitlines()
    assert "  1.1 / staging: build by bob" in text.splitlines()
    assert data["releases"][0]["build"]["repository"] == "https://github.com/example/notebooks"
    assert data["releases"][0]["build"]["provider"] == "github"
