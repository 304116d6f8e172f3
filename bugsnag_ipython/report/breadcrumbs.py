"""Breadcrumbs: the trail of what happened before an event, oldest dropped first."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .payloads import encode_text, iso8601, redact

BREADCRUMB_TYPES = ("error", "log", "manual", "navigation", "process", "request", "state", "user")
MAX_NAME = 100  # characters of a breadcrumb's name, as the BugSnag dashboard shows it


class _Stored:
    """A breadcrumb as left (never changed afterwards), and its redacted form once made.

    Its dict, with the ISO timestamp, is made when an event first needs it: a breadcrumb is
    left for every cell, and most are never sent."""

    __slots__ = (
        "_crumb", "at", "metadata", "name", "read", "redacted", "redacted_for", "redacted_json", "type"
    )

    def __init__(self, name: str, at: float, type: str, metadata: dict[str, Any]) -> None:
        self.name = name
        self.at = at
        self.type = type
        self.metadata = metadata
        self._crumb: dict[str, Any] | None = None
        self.redacted: dict[str, Any] | None = None
        self.redacted_for: tuple[str, ...] | None = None
        self.redacted_json = ""  # the redacted form, encoded
        self.read = False  # in the trail when an event read it: all older ones are _Stored

    @property
    def crumb(self) -> dict[str, Any]:
        if self._crumb is None:
            self._crumb = {
                "timestamp": iso8601(self.at),
                "name": self.name,
                "type": self.type,
                "metaData": self.metadata,
            }
        return self._crumb


class Breadcrumbs:
    """At most `limit` breadcrumbs; safe to add to from any thread (cells, logging, workers)."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        # A finished cell is kept as a bare tuple (what the cell path can afford) and becomes a
        # _Stored the first time an event reads the trail.
        self._trail: deque[_Stored | _Cell] = deque(maxlen=limit)

    def resize(self, limit: int) -> None:
        with self._lock:
            if self._trail.maxlen != limit:
                self._trail = deque(self._trail, maxlen=limit)

    def leave(
        self, name: str, at: float, metadata: dict[str, Any] | None = None, type: str = "manual"
    ) -> None:
        if type not in BREADCRUMB_TYPES:
            type = "manual"
        stored = _Stored(str(name)[:MAX_NAME], at, type, dict(metadata) if metadata else {})
        with self._lock:
            self._trail.append(stored)

    def leave_cell(
        self, execution_count: int | None, at: float, started: float, ended: float, ok: bool
    ) -> None:
        """The `process` breadcrumb of a finished cell, as cheaply as it can be left: no lock
        (a deque's append is atomic; only a concurrent resize could lose this one crumb)."""
        self._trail.append((execution_count, at, started, ended, ok))

    def _stored_trail(self) -> list[_Stored]:
        """The trail, with the cells finished since the last read made _Stored, in place.

        Only breadcrumbs left since the last read can be tuples, and they are the newest: an
        event converts and marks those few, not the whole trail."""
        with self._lock:
            while True:
                trail = self._trail
                items = list(trail)
                newest = items[-1] if items else None
                first_unread = _first_unread(items)
                converted = False
                for index in range(first_unread, len(items)):
                    item = items[index]
                    if type(item) is tuple:
                        items[index] = _as_stored(item)
                        converted = True
                if converted:
                    if trail[-1] is not newest:
                        continue  # a cell ended meanwhile: its tuple is only in this deque
                    self._trail = deque(items, maxlen=trail.maxlen)
                for item in items[first_unread:]:
                    item.read = True  # type: ignore[union-attr]  # all _Stored now
                return items  # type: ignore[return-value]

    def snapshot(self) -> list[dict[str, Any]]:
        """The trail, oldest first, as copies an event's callbacks may change freely."""
        trail = [stored.crumb for stored in self._stored_trail()]
        return [{**crumb, "metaData": dict(crumb["metaData"])} for crumb in trail]

    def redacted(self, keys: tuple[str, ...]) -> tuple[list[dict[str, Any]], str]:
        """The trail, oldest first, already redacted with `keys`, and its JSON text: for events
        no callback will change. Each breadcrumb is redacted and encoded once, not once per
        event (events are built on the cell's thread, and the trail is most of an event's
        values). The result is shared: read it, never change it."""
        result = []
        texts = []
        for stored in self._stored_trail():
            redacted = stored.redacted
            if redacted is None or stored.redacted_for != keys:
                crumb = stored.crumb
                redacted = {**crumb, "metaData": redact(crumb["metaData"], keys)}
                stored.redacted, stored.redacted_for = redacted, keys
                stored.redacted_json = encode_text(redacted)
            result.append(redacted)
            texts.append(stored.redacted_json)
        return result, "[" + ",".join(texts) + "]"

    def __len__(self) -> int:
        return len(self._trail)


_Cell = tuple[int | None, float, float, float, bool]  # count, when, started, ended, ok


def _first_unread(items: list[_Stored | _Cell]) -> int:
    """The index of the oldest item no read has seen: the ones after the newest read one."""
    index = len(items)
    while index:
        item = items[index - 1]
        if isinstance(item, _Stored) and item.read:
            break
        index -= 1
    return index


def _as_stored(item: _Stored | _Cell) -> _Stored:
    if isinstance(item, _Stored):
        return item
    count, at, started, ended, ok = item
    metadata = {"durationMs": round((ended - started) * 1000), "status": "ok" if ok else "error"}
    return _Stored(f"In [{count}]" if count else "Cell", at, "process", metadata)


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
        if self._active and record.levelno >= self.level and not _machinery(record.name):
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


# Loggers of the notifier itself and of the kernel's own machinery: their records say how the
# kernel talks to its frontend ("No such comm target registered: jupyter.widget.control"), not
# what the user's code or its libraries did before an error, so they leave no breadcrumb.
MACHINERY_LOGGERS = (
    "bugsnag_ipython", "ipykernel", "IPKernelApp", "IPython", "Comm", "comm", "traitlets",
    "tornado", "jupyter_client", "zmq",
)
_MACHINERY_NAMES = frozenset(MACHINERY_LOGGERS)
_MACHINERY_PREFIXES = tuple(name + "." for name in MACHINERY_LOGGERS)


def _machinery(logger: str) -> bool:
    return logger in _MACHINERY_NAMES or logger.startswith(_MACHINERY_PREFIXES)
