"""The collector's SQLite store: every request received and the sessions, events and builds accepted,
as records (a dataclass per table, a field per column). One connection, under a lock, serves the handler
threads; WAL with `synchronous=NORMAL` skips an fsync per request, to keep up with thousands a second."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

Kind = Literal["sessions", "events", "builds"]


@dataclass(frozen=True)
class RequestRecord:
    """One request received on an endpoint, accepted or refused."""

    id: int
    received_at: str
    kind: Kind
    status: int
    reason: str
    headers: dict[str, str]
    body: str

    def header(self, name: str) -> str | None:
        """A header's value, looked up case-insensitively."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


@dataclass(frozen=True)
class PayloadRecord:
    """What every row of an accepted payload carries: its release and the request it came in."""

    id: int
    api_key: str | None
    app_version: str | None
    release_stage: str | None
    received_at: str
    request_id: int


@dataclass(frozen=True)
class SessionRecord(PayloadRecord):
    """One session from an accepted sessions payload."""

    session_id: str
    started_at: str


@dataclass(frozen=True)
class SessionCountRecord(PayloadRecord):
    """Sessions a server notifier counted without ids: how many started in one minute."""

    started_at: str
    sessions_started: int


@dataclass(frozen=True)
class EventRecord(PayloadRecord):
    """One event from an accepted events payload; `event` is the event object as sent."""

    error_class: str
    message: str | None
    unhandled: bool
    severity: str
    session_id: str | None
    session_handled: int | None
    session_unhandled: int | None
    event: dict[str, Any]


@dataclass(frozen=True)
class BuildRecord(PayloadRecord):
    """One build reported to the Build API; `build` is the body as sent."""

    api_key: str
    app_version: str
    builder_name: str | None
    provider: str | None
    repository: str | None
    revision: str | None
    build: dict[str, Any]


Row = dict[str, Any]
R = TypeVar("R", RequestRecord, SessionRecord, SessionCountRecord, EventRecord, BuildRecord)
_TABLES: Mapping[type, str] = {
    RequestRecord: "requests",
    SessionRecord: "sessions",
    SessionCountRecord: "session_counts",
    EventRecord: "events",
    BuildRecord: "builds",
}
_JSON_COLUMNS = frozenset({"headers", "event", "build"})


def _schema() -> str:
    """A table per record, a column per field: `int` and `bool` fields are INTEGER, the rest TEXT
    (JSON for dicts); only fields that may be None may be NULL."""
    statements = []
    for record, table in _TABLES.items():
        columns = ["id INTEGER PRIMARY KEY"]
        for field in fields(record)[1:]:
            kind = str(field.type)
            sql_type = "INTEGER" if kind.startswith(("int", "bool")) else "TEXT"
            columns.append(f"{field.name} {sql_type}" + ("" if "None" in kind else " NOT NULL"))
            if field.name == "request_id":
                columns[-1] += " REFERENCES requests(id)"
        statements.append(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)});")
    return "\n".join([
        *statements,
        "CREATE INDEX IF NOT EXISTS sessions_by_session_id ON sessions(session_id);",
        "CREATE INDEX IF NOT EXISTS events_by_session_id ON events(session_id);",
    ])


class Store:
    """The SQLite file behind a collector, safe to share between threads; records come oldest first."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.touch(mode=0o600)  # readable by its owner only; SQLite gives -wal/-shm the same
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_schema())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def record(
        self, kind: Kind, status: int, reason: str, headers: Mapping[str, str], body: bytes,
        payload: Mapping[str, Any] | None = None,
    ) -> int:
        """Store one request and its payload's sessions, events or build in one transaction; its id."""
        request: Row = {
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "kind": kind,
            "status": status,
            "reason": reason,
            "headers": json.dumps(dict(headers)),
            "body": body.decode("utf-8", errors="replace"),
        }
        lowered = {name.lower(): value for name, value in headers.items()}
        api_key = lowered.get("bugsnag-api-key", "").strip() or None
        with self._lock, self._conn:
            request_id = self._conn.execute(_insert("requests", request), request).lastrowid
            assert request_id is not None
            if payload is not None:
                table, rows = _payload_rows(kind, payload, api_key)
                common = {"received_at": request["received_at"], "request_id": request_id}
                rows = [{**row, **common} for row in rows]
                self._conn.executemany(_insert(table, rows[0]), rows)
        return request_id

    def requests(self, kind: Kind | None = None) -> list[RequestRecord]:
        """Every request received, oldest first; only one endpoint's when `kind` is given."""
        return [request for request in self._select(RequestRecord) if kind in (None, request.kind)]

    def sessions(self) -> list[SessionRecord]:
        return self._select(SessionRecord)

    def session_counts(self) -> list[SessionCountRecord]:
        """Every per-minute session count accepted (the server notifiers' form), oldest first."""
        return self._select(SessionCountRecord)

    def events(self) -> list[EventRecord]:
        return self._select(EventRecord)

    def builds(self) -> list[BuildRecord]:
        return self._select(BuildRecord)

    def count(self, kind: Kind) -> int:
        """How many sessions (sent one by one or counted), events or builds have been accepted."""
        query = f"SELECT COUNT(*) FROM {kind}"
        if kind == "sessions":
            query = f"SELECT ({query}) + (SELECT COALESCE(SUM(sessions_started), 0) FROM session_counts)"
        return int(self._fetch(query)[0][0])

    def clear(self) -> None:
        """Forget everything received."""
        with self._lock, self._conn:
            for table in ("sessions", "session_counts", "events", "builds", "requests"):
                self._conn.execute(f"DELETE FROM {table}")

    def _select(self, record: type[R]) -> list[R]:
        names = [field.name for field in fields(record)]
        query = f"SELECT {', '.join(names)} FROM {_TABLES[record]} ORDER BY id"
        return [record(*map(_decoded, names, row)) for row in self._fetch(query)]

    def _fetch(self, query: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(query).fetchall()


def _insert(table: str, row: Row) -> str:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + column for column in row)})"


def _decoded(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS:
        return json.loads(value)
    return bool(value) if column == "unhandled" else value


def _text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _app(app: object, release_stage: object = None) -> Row:
    """The app's version and release stage; `release_stage` is the event's own (python's)."""
    app = app if isinstance(app, dict) else {}
    stage = app.get("releaseStage")
    return {
        "app_version": _text(app.get("version")),
        "release_stage": _text(release_stage if stage is None else stage),
    }


def _payload_rows(kind: Kind, payload: Mapping[str, Any], api_key: str | None) -> tuple[str, list[Row]]:
    """The table an accepted payload goes in, and its rows (without when and by which request)."""
    if kind == "builds":
        source = payload.get("sourceControl") or {}
        return "builds", [{
            "api_key": payload["apiKey"],
            "app_version": payload["appVersion"],
            "release_stage": payload.get("releaseStage"),
            "builder_name": payload.get("builderName"),
            "provider": source.get("provider"),
            "repository": source.get("repository"),
            "revision": source.get("revision"),
            "build": json.dumps(dict(payload)),
        }]
    if kind == "sessions":
        app = {"api_key": api_key, **_app(payload.get("app"))}
        if "sessions" in payload:
            return "sessions", [
                {"session_id": session["id"], "started_at": session["startedAt"], **app}
                for session in payload["sessions"]
            ]
        return "session_counts", [
            {"started_at": count["startedAt"], "sessions_started": count["sessionsStarted"], **app}
            for count in payload["sessionCounts"]
        ]
    api_key = api_key or _text(payload.get("apiKey"))
    return "events", [_event_row(event, api_key) for event in payload["events"]]


def _event_row(event: Mapping[str, Any], api_key: str | None) -> Row:
    first = event["exceptions"][0]
    session = event.get("session")
    if not isinstance(session, dict):
        session = {"id": None, "events": {"handled": None, "unhandled": None}}
    return {
        "api_key": api_key,
        **_app(event.get("app"), event.get("releaseStage")),
        "error_class": first["errorClass"],
        "message": _text(first.get("message")),
        "unhandled": int(bool(event["unhandled"])),
        "severity": event["severity"],
        "session_id": session["id"],
        "session_handled": session["events"]["handled"],
        "session_unhandled": session["events"]["unhandled"],
        "event": json.dumps(event),
    }
