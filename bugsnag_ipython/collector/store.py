"""The collector's SQLite store: every request received, and the sessions, events and builds
accepted.

One connection, guarded by a lock, shared by the receiver's handler threads. WAL mode with
`synchronous=NORMAL` commits without an fsync per request, which is what lets one connection
keep up with thousands of small events a second.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .records import (
    BuildRecord,
    EventRecord,
    Kind,
    RequestRecord,
    SessionCountRecord,
    SessionRecord,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    headers TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    api_key TEXT,
    app_version TEXT,
    release_stage TEXT,
    received_at TEXT NOT NULL,
    request_id INTEGER NOT NULL REFERENCES requests(id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    api_key TEXT,
    app_version TEXT,
    release_stage TEXT,
    error_class TEXT NOT NULL,
    message TEXT,
    unhandled INTEGER NOT NULL,
    severity TEXT NOT NULL,
    session_id TEXT,
    session_handled INTEGER,
    session_unhandled INTEGER,
    received_at TEXT NOT NULL,
    request_id INTEGER NOT NULL REFERENCES requests(id),
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS session_counts (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    sessions_started INTEGER NOT NULL,
    api_key TEXT,
    app_version TEXT,
    release_stage TEXT,
    received_at TEXT NOT NULL,
    request_id INTEGER NOT NULL REFERENCES requests(id)
);
CREATE TABLE IF NOT EXISTS builds (
    id INTEGER PRIMARY KEY,
    api_key TEXT NOT NULL,
    app_version TEXT NOT NULL,
    release_stage TEXT,
    builder_name TEXT,
    provider TEXT,
    repository TEXT,
    revision TEXT,
    received_at TEXT NOT NULL,
    request_id INTEGER NOT NULL REFERENCES requests(id),
    build TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_session_id ON sessions(session_id);
CREATE INDEX IF NOT EXISTS events_by_session_id ON events(session_id);
"""


def utc_now() -> str:
    """The current UTC time as ISO-8601 with milliseconds and a Z suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """The SQLite file behind a collector. Safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        _create_private(self.path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def record(
        self,
        kind: Kind,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        body: bytes,
        payload: Mapping[str, Any] | None = None,
    ) -> int:
        """Store one request and, when it carries a payload, its sessions, events or build.

        All rows go in one transaction. Returns the request's id.
        """
        received_at = utc_now()
        lowered = {name.lower(): value for name, value in headers.items()}
        header_key = lowered.get("bugsnag-api-key", "").strip() or None
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "INSERT INTO requests (received_at, kind, status, reason, headers, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    received_at,
                    kind,
                    status,
                    reason,
                    json.dumps(dict(headers)),
                    body.decode("utf-8", errors="replace"),
                ),
            )
            request_id = cursor.lastrowid
            assert request_id is not None
            if payload is not None and kind == "sessions" and "sessions" in payload:
                self._conn.executemany(
                    "INSERT INTO sessions (session_id, started_at, api_key, app_version,"
                    " release_stage, received_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    _session_rows(payload, header_key, received_at, request_id),
                )
            elif payload is not None and kind == "builds":
                self._conn.execute(
                    "INSERT INTO builds (api_key, app_version, release_stage, builder_name,"
                    " provider, repository, revision, received_at, request_id, build)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _build_row(payload, received_at, request_id),
                )
            elif payload is not None and kind == "sessions":
                self._conn.executemany(
                    "INSERT INTO session_counts (started_at, sessions_started, api_key,"
                    " app_version, release_stage, received_at, request_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    _session_count_rows(payload, header_key, received_at, request_id),
                )
            elif payload is not None:
                self._conn.executemany(
                    "INSERT INTO events (api_key, app_version, release_stage, error_class,"
                    " message, unhandled, severity, session_id, session_handled,"
                    " session_unhandled, received_at, request_id, event)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _event_rows(payload, header_key, received_at, request_id),
                )
        return request_id

    def requests(self, kind: Kind | None = None) -> list[RequestRecord]:
        """Every request received, oldest first; only one endpoint's when `kind` is given."""
        query = "SELECT id, received_at, kind, status, reason, headers, body FROM requests"
        params: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        rows = self._fetch(query + " ORDER BY id", params)
        return [
            RequestRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6])
            for row in rows
        ]

    def sessions(self) -> list[SessionRecord]:
        """Every session accepted, oldest first."""
        rows = self._fetch(
            "SELECT id, session_id, started_at, api_key, app_version, release_stage,"
            " received_at, request_id FROM sessions ORDER BY id"
        )
        return [SessionRecord(*row) for row in rows]

    def session_counts(self) -> list[SessionCountRecord]:
        """Every per-minute session count accepted (the server notifiers' form), oldest first."""
        rows = self._fetch(
            "SELECT id, started_at, sessions_started, api_key, app_version, release_stage,"
            " received_at, request_id FROM session_counts ORDER BY id"
        )
        return [SessionCountRecord(*row) for row in rows]

    def events(self) -> list[EventRecord]:
        """Every event accepted, oldest first."""
        rows = self._fetch(
            "SELECT id, api_key, app_version, release_stage, error_class, message, unhandled,"
            " severity, session_id, session_handled, session_unhandled, received_at,"
            " request_id, event FROM events ORDER BY id"
        )
        return [
            EventRecord(
                id=row[0],
                api_key=row[1],
                app_version=row[2],
                release_stage=row[3],
                error_class=row[4],
                message=row[5],
                unhandled=bool(row[6]),
                severity=row[7],
                session_id=row[8],
                session_handled=row[9],
                session_unhandled=row[10],
                received_at=row[11],
                request_id=row[12],
                event=json.loads(row[13]),
            )
            for row in rows
        ]

    def builds(self) -> list[BuildRecord]:
        """Every build accepted, oldest first."""
        rows = self._fetch(
            "SELECT id, api_key, app_version, release_stage, builder_name, provider, repository,"
            " revision, received_at, request_id, build FROM builds ORDER BY id"
        )
        return [
            BuildRecord(
                id=row[0],
                api_key=row[1],
                app_version=row[2],
                release_stage=row[3],
                builder_name=row[4],
                provider=row[5],
                repository=row[6],
                revision=row[7],
                received_at=row[8],
                request_id=row[9],
                build=json.loads(row[10]),
            )
            for row in rows
        ]

    def count(self, kind: Kind) -> int:
        """How many sessions (sent one by one or counted), events or builds have been accepted."""
        if kind in ("events", "builds"):
            return int(self._fetch(f"SELECT COUNT(*) FROM {kind}")[0][0])
        rows = self._fetch(
            "SELECT (SELECT COUNT(*) FROM sessions),"
            " (SELECT COALESCE(SUM(sessions_started), 0) FROM session_counts)"
        )
        return int(rows[0][0]) + int(rows[0][1])

    def clear(self) -> None:
        """Forget everything received."""
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM sessions")
            self._conn.execute("DELETE FROM session_counts")
            self._conn.execute("DELETE FROM events")
            self._conn.execute("DELETE FROM builds")
            self._conn.execute("DELETE FROM requests")

    def _fetch(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(query, params).fetchall()


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only; SQLite gives -wal/-shm the same."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)


def _app_fields(app: object, release_stage: object = None) -> tuple[str | None, str | None]:
    """The app's version and release stage; `release_stage` is the event's own (python's)."""
    if not isinstance(app, dict):
        app = {}
    stage = app.get("releaseStage")
    if stage is None:
        stage = release_stage
    return _optional_str(app.get("version")), _optional_str(stage)


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _build_row(payload: Mapping[str, Any], received_at: str, request_id: int) -> tuple[Any, ...]:
    source = payload.get("sourceControl")
    if not isinstance(source, dict):
        source = {}
    return (
        payload["apiKey"],
        payload["appVersion"],
        _optional_str(payload.get("releaseStage")),
        _optional_str(payload.get("builderName")),
        _optional_str(source.get("provider")),
        _optional_str(source.get("repository")),
        _optional_str(source.get("revision")),
        received_at,
        request_id,
        json.dumps(dict(payload)),
    )


def _session_rows(
    payload: Mapping[str, Any], api_key: str | None, received_at: str, request_id: int
) -> list[tuple[Any, ...]]:
    app_version, release_stage = _app_fields(payload.get("app"))
    return [
        (
            session["id"],
            session["startedAt"],
            api_key,
            app_version,
            release_stage,
            received_at,
            request_id,
        )
        for session in payload["sessions"]
    ]


def _session_count_rows(
    payload: Mapping[str, Any], api_key: str | None, received_at: str, request_id: int
) -> list[tuple[Any, ...]]:
    app_version, release_stage = _app_fields(payload.get("app"))
    return [
        (
            count["startedAt"],
            count["sessionsStarted"],
            api_key,
            app_version,
            release_stage,
            received_at,
            request_id,
        )
        for count in payload["sessionCounts"]
    ]


def _event_rows(
    payload: Mapping[str, Any], api_key: str | None, received_at: str, request_id: int
) -> list[tuple[Any, ...]]:
    body_key = _optional_str(payload.get("apiKey"))
    rows: list[tuple[Any, ...]] = []
    for event in payload["events"]:
        app_version, release_stage = _app_fields(event.get("app"), event.get("releaseStage"))
        first = event["exceptions"][0]
        session = event.get("session")
        session_id = handled = unhandled = None
        if isinstance(session, dict):
            session_id = session["id"]
            handled = session["events"]["handled"]
            unhandled = session["events"]["unhandled"]
        rows.append(
            (
                api_key or body_key,
                app_version,
                release_stage,
                first["errorClass"],
                _optional_str(first.get("message")),
                int(bool(event["unhandled"])),
                event["severity"],
                session_id,
                handled,
                unhandled,
                received_at,
                request_id,
                json.dumps(event),
            )
        )
    return rows
