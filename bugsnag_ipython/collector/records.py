"""The rows the collector's store gives back: one dataclass per table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class SessionRecord:
    """One session from an accepted sessions payload."""

    id: int
    session_id: str
    started_at: str
    api_key: str | None
    app_version: str | None
    release_stage: str | None
    received_at: str
    request_id: int


@dataclass(frozen=True)
class SessionCountRecord:
    """Sessions a server notifier counted without ids: how many started in one minute."""

    id: int
    started_at: str
    sessions_started: int
    api_key: str | None
    app_version: str | None
    release_stage: str | None
    received_at: str
    request_id: int


@dataclass(frozen=True)
class EventRecord:
    """One event from an accepted events payload; `event` is the event object as sent."""

    id: int
    api_key: str | None
    app_version: str | None
    release_stage: str | None
    error_class: str
    message: str | None
    unhandled: bool
    severity: str
    session_id: str | None
    session_handled: int | None
    session_unhandled: int | None
    received_at: str
    request_id: int
    event: dict[str, Any]


@dataclass(frozen=True)
class BuildRecord:
    """One build reported to the Build API; `build` is the body as sent."""

    id: int
    api_key: str
    app_version: str
    release_stage: str | None
    builder_name: str | None
    provider: str | None
    repository: str | None
    revision: str | None
    received_at: str
    request_id: int
    build: dict[str, Any]
