"""Breadcrumbs: the trail of what happened before an event, oldest dropped first."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .payloads import encode, iso8601, redact

BREADCRUMB_TYPES = ("error", "log", "manual", "navigation", "process", "request", "state", "user")
MAX_NAME = 100  # characters of a breadcrumb's name, as the BugSnag dashboard shows it


class _Stored:
    """A breadcrumb as left (never changed afterwards), and its redacted form once made."""

    __slots__ = ("crumb", "redacted", "redacted_for", "size")

    def __init__(self, crumb: dict[str, Any]) -> None:
        self.crumb = crumb
        self.redacted: dict[str, Any] | None = None
        self.redacted_for: tuple[str, ...] | None = None
        self.size = 0  # bytes of the redacted form, encoded


class Breadcrumbs:
    """At most `limit` breadcrumbs; safe to add to from any thread (cells, logging, workers)."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._trail: deque[_Stored] = deque(maxlen=limit)

    def resize(self, limit: int) -> None:
        with self._lock:
            if self._trail.maxlen != limit:
                self._trail = deque(self._trail, maxlen=limit)

    def leave(
        self, name: str, at: float, metadata: dict[str, Any] | None = None, type: str = "manual"
    ) -> None:
        if type not in BREADCRUMB_TYPES:
            type = "manual"
        crumb = {
            "timestamp": iso8601(at),
            "name": str(name)[:MAX_NAME],
            "type": type,
            "metaData": dict(metadata or {}),
        }
        with self._lock:
            self._trail.append(_Stored(crumb))

    def snapshot(self) -> list[dict[str, Any]]:
        """The trail, oldest first, as copies an event's callbacks may change freely."""
        with self._lock:
            trail = [stored.crumb for stored in self._trail]
        return [{**crumb, "metaData": dict(crumb["metaData"])} for crumb in trail]

    def redacted(self, keys: tuple[str, ...]) -> tuple[list[dict[str, Any]], int]:
        """The trail, oldest first, already redacted with `keys`, and its encoded size: for
        events no callback will change. Each breadcrumb is redacted and measured once, not
        once per event (events are built on the cell's thread, and the trail is most of an
        event's values). The result is shared: read it, never change it."""
        with self._lock:
            trail = list(self._trail)
        result = []
        size = 2
        for stored in trail:
            redacted = stored.redacted
            if redacted is None or stored.redacted_for != keys:
                crumb = stored.crumb
                redacted = {**crumb, "metaData": redact(crumb["metaData"], keys)}
                stored.redacted, stored.redacted_for = redacted, keys
                stored.size = len(encode(redacted))
            result.append(redacted)
            size += stored.size + 1
        return result, size

    def __len__(self) -> int:
        return len(self._trail)


LeaveBreadcrumb = Callable[[str, dict[str, Any], str], None]
MAX_LOG_MESSAGE = 10_000  # characters kept of one log message


class LogBreadcrumbs:
    """Leaves a `log` breadcrumb for every `logging` record of level WARNING and above.

    It wraps the log record factory rather than adding a handler to the root logger: a root
    handler would make `logging.basicConfig()` do nothing and silence Python's last-resort
    printing of warnings, so a notebook's own logging would change just by loading this.
    The factory sees exactly the records that loggers let through their level.
    """

    def __init__(self, leave: LeaveBreadcrumb, level: int = logging.WARNING) -> None:
        self._leave = leave
        self.level = level
        self._previous: Callable[..., logging.LogRecord] | None = None
        self._active = False

    def install(self) -> None:
        if self._previous is None:  # not in the factory chain yet (or no longer)
            self._previous = logging.getLogRecordFactory()
            logging.setLogRecordFactory(self._make_record)
        self._active = True

    def uninstall(self) -> None:
        self._active = False
        # Restore only if nobody wrapped the factory after us; otherwise stay in their chain,
        # passing records through untouched, rather than cut their wrapper out.
        if logging.getLogRecordFactory() == self._make_record and self._previous is not None:
            logging.setLogRecordFactory(self._previous)
            self._previous = None

    def _make_record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        previous = self._previous or logging.LogRecord
        record = previous(*args, **kwargs)
        if self._active and record.levelno >= self.level and not record.name.startswith(_OWN_LOGGER):
            try:
                message = record.getMessage()
                self._leave(
                    message,
                    {
                        "logLevel": record.levelname,
                        "logger": record.name,
                        "message": message[:MAX_LOG_MESSAGE],
                    },
                    "log",
                )
            except Exception:
                pass  # a record whose message cannot be formatted fails where it is emitted
        return record


_OWN_LOGGER = "bugsnag_ipython"  # our own warnings are about the notifier, not the notebook
