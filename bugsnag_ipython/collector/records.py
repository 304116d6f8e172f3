"""The rows the collector's store gives back: one dataclass per table, each column a field."""

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
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


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
    """One build reported to the Build API (which requires its API key and version); `build` is
    the body as sent."""

    api_key: str
    app_version: str
    builder_name: str | None
    provider: str | None
    repository: str | None
    revision: str | None
    build: dict[str, Any]
