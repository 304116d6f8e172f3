"""Sessions and the rules that start, pause and resume them (bugsnag-android's SessionTracker):
loading the extension is the launch, a running cell the foreground, the kernel idle the background."""

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple


def random_uuid4() -> str:
    """What str(uuid.uuid4()) makes, without importing uuid (and platform) on the loading thread."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = raw.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


class SessionSnapshot(NamedTuple):
    """A session as it stands, as events carry it and `current_session()` returns it."""

    id: str
    started_at: float  # seconds since the epoch
    handled: int
    unhandled: int
    paused: bool


@dataclass
class TrackerCounts:
    """What this kernel's tracker has seen, for status (events outside a session count in `_outside`)."""

    sessions_started: int = 0
    sessions_with_unhandled: int = 0
    handled_outside: int = 0
    unhandled_outside: int = 0


class SessionTracker:
    """Decides when sessions start and counts the events attributed to them. Thread-safe;
    listeners hear of each new session outside the lock."""

    def __init__(self, auto_track: bool, background_timeout: float, monotonic: Callable[[], float],
                 wall_clock: Callable[[], float], new_id: Callable[[], str] = random_uuid4) -> None:
        self.auto_track = auto_track
        self.background_timeout = background_timeout
        self.monotonic = monotonic
        self.wall_clock = wall_clock
        self.new_id = new_id
        self._lock = threading.Lock()
        self._session: SessionSnapshot | None = None
        # When the kernel went idle; None while a cell runs. Only the cell thread writes it.
        self._background_since: float | None = None
        self._listeners: list[Callable[[SessionSnapshot], None]] = []
        self.counts = TrackerCounts()

    def add_listener(self, listener: Callable[[SessionSnapshot], None]) -> None:
        self._listeners.append(listener)

    def launch(self, *, in_background: bool) -> SessionSnapshot | None:
        """The launch: a session when tracking is automatic. `in_background` when loaded before
        any cell; a `%load_ext` runs in a cell, whose end begins the background."""
        self._background_since = self.monotonic() if in_background else None
        return self.start_session() if self.auto_track else None

    def enter_foreground(self, now: float | None = None) -> SessionSnapshot | None:
        """A cell starts (at `now` on the monotonic clock, if read); returns the session this
        started, if any. As on Android, a return after the timeout starts one even when paused."""
        since = self._background_since  # no lock: only the cell thread writes it
        self._background_since = None
        if not (self.auto_track and since is not None):
            return None
        if (self.monotonic() if now is None else now) - since < self.background_timeout:
            return None
        return self.start_session()

    def enter_background(self, now: float | None = None) -> None:
        """A cell finished (at `now` on the monotonic clock, if read)."""
        self._background_since = self.monotonic() if now is None else now

    @property
    def in_foreground(self) -> bool:
        return self._background_since is None

    def start_session(self) -> SessionSnapshot:
        with self._lock:
            started = self._session = SessionSnapshot(self.new_id(), self.wall_clock(), 0, 0, False)
            self.counts.sessions_started += 1
        for listener in list(self._listeners):
            listener(started)
        return started

    def pause_session(self) -> bool:
        """Pause the current session; False (and no change) when there is none."""
        with self._lock:
            if self._session is None:
                return False
            self._session = self._session._replace(paused=True)
            return True

    def resume_session(self) -> tuple[bool, SessionSnapshot]:
        """(True, session) if a paused session was resumed, else (False, the session or a new one)."""
        with self._lock:
            session = self._session
            if session is not None:
                self._session = session._replace(paused=False)
                return session.paused, self._session
        return False, self.start_session()

    def current(self) -> SessionSnapshot | None:
        with self._lock:
            return self._session

    def track_event(self, *, unhandled: bool) -> SessionSnapshot | None:
        """Count an event: the session snapshot it carries (counting it), or None outside an unpaused one."""
        with self._lock:
            session = self._session
            if session is None or session.paused:
                if unhandled:
                    self.counts.unhandled_outside += 1
                else:
                    self.counts.handled_outside += 1
                return None
            if unhandled:
                if session.unhandled == 0:
                    self.counts.sessions_with_unhandled += 1
                session = session._replace(unhandled=session.unhandled + 1)
            else:
                session = session._replace(handled=session.handled + 1)
            self._session = session
            return session
