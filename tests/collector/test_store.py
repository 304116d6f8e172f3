"""The SQLite store on its own."""

from __future__ import annotations

import stat
from pathlib import Path

from bugsnag_ipython.collector import Store
from bugsnag_ipython.collector.validation import check_request
from tests.payloads import encode, event_payload, headers_for, session_payload


def _record(store: Store, kind: str, payload: object) -> int:
    body = encode(payload)
    headers = headers_for(kind, body)
    verdict = check_request(kind, headers, body)  # type: ignore[arg-type]
    return store.record(kind, verdict.status, verdict.reason, headers, body, verdict.payload)  # type: ignore[arg-type]


def test_the_database_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "collector.sqlite"
    with Store(path) as store:
        _record(store, "sessions", session_payload())
        for file in (path, Path(f"{path}-wal")):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_rows_point_at_their_request(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        session_request = _record(store, "sessions", session_payload("s-1"))
        event_request = _record(store, "events", event_payload(session_id="s-1"))
        assert [s.request_id for s in store.sessions()] == [session_request]
        assert [e.request_id for e in store.events()] == [event_request]
        assert [r.kind for r in store.requests()] == ["sessions", "events"]
        assert [r.id for r in store.requests("events")] == [event_request]


def test_a_refused_request_is_recorded_without_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        store.record("events", 400, "The body must be a JSON object.", {}, b"\xffnot json")
        [request] = store.requests()
        assert request.status == 400
        assert store.events() == []
        assert store.count("events") == 0


def test_clear_forgets_everything(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        _record(store, "sessions", session_payload())
        _record(store, "events", event_payload())
        store.clear()
        assert (store.requests(), store.sessions(), store.events()) == ([], [], [])


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with Store(path) as store:
        _record(store, "events", event_payload(error_class="KeyError", message="'x'"))
    with Store(path) as store:
        [event] = store.events()
        assert (event.error_class, event.message) == ("KeyError", "'x'")


def test_counted_sessions_are_kept_with_their_count(tmp_path: Path) -> None:
    payload = session_payload(version="2.1")
    del payload["sessions"]
    payload["sessionCounts"] = [
        {"startedAt": "2026-12-01T08:03:00", "sessionsStarted": 4},
        {"startedAt": "2026-12-01T08:04:00", "sessionsStarted": 1},
    ]
    with Store(tmp_path / "db.sqlite") as store:
        request_id = _record(store, "sessions", payload)
        _record(store, "sessions", session_payload("s-1"))
        counts = store.session_counts()
        assert [(c.started_at, c.sessions_started, c.app_version) for c in counts] == [
            ("2026-12-01T08:03:00", 4, "2.1"),
            ("2026-12-01T08:04:00", 1, "2.1"),
        ]
        assert {c.request_id for c in counts} == {request_id}
        assert store.count("sessions") == 6
        store.clear()
        assert store.session_counts() == [] and store.count("sessions") == 0


def test_an_event_s_own_release_stage_is_used_when_its_app_has_none(tmp_path: Path) -> None:
    payload = event_payload(version="1.0")
    del payload["events"][0]["app"]["releaseStage"]
    payload["events"][0]["releaseStage"] = "staging"  # where bugsnag-python puts it
    with Store(tmp_path / "db.sqlite") as store:
        _record(store, "events", payload)
        [event] = store.events()
    assert (event.app_version, event.release_stage) == ("1.0", "staging")
