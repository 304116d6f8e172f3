"""Breadcrumbs: the trail of what happened before an event, oldest dropped first."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from ..core.basics import JsonDict
from .payloads import encode, iso8601, redact

BREADCRUMB_TYPES = ("error", "log", "manual", "navigation", "process", "request", "state", "user")
MAX_NAME = 100  # characters of a breadcrumb's name, as the BugSnag dashboard shows it


class Breadcrumbs:
    """At most `limit` breadcrumbs, left from any thread. No lock: a deque's append and its copy
    are atomic (only a resize racing an append could lose that one breadcrumb)."""

    def __init__(self, limit: int) -> None:
        self._trail: deque[JsonDict | _Cell] = deque(maxlen=limit)
        self._shown: dict[int, _Shown] = {}

    def resize(self, limit: int) -> None:
        if self._trail.maxlen != limit:
            self._trail = deque(self._trail, maxlen=limit)

    def leave(self, name: str, at: float, metadata: dict[str, Any] | None = None,
              type: str = "manual") -> None:
        self._trail.append({
            "timestamp": at,
            "name": str(name)[:MAX_NAME],
            "type": type if type in BREADCRUMB_TYPES else "manual",
            "metaData": dict(metadata) if metadata else {},
        })

    def leave_cell(self, execution_count: int | None, at: float, started: float, ended: float,
                   ok: bool) -> None:
        """The `process` breadcrumb of a finished cell, a tuple until an event reads it (the cell budget)."""
        self._trail.append((execution_count, at, started, ended, ok))

    def snapshot(self, keys: tuple[str, ...] = ()) -> Trail:
        """The trail, oldest first, redacted by `keys`; each crumb encoded once (the error-cost target)."""
        memo = self._shown
        shown: list[_Shown] = []
        for item in list(self._trail):
            made = memo.get(id(item))
            if made is None or made.item is not item or made.keys != keys:
                crumb = _cell_crumb(*item) if isinstance(item, tuple) else item
                crumb = {**crumb, "timestamp": iso8601(crumb["timestamp"]),
                         "metaData": redact(crumb["metaData"], keys)}
                made = memo[id(item)] = _Shown(item, keys, crumb, encode(crumb))
            shown.append(made)
        if len(memo) > 2 * len(shown):  # keep what the trail holds (an id is never another's)
            self._shown = {id(made.item): made for made in shown}
        crumbs = Trail(made.crumb for made in shown)
        crumbs.encoded = b"[" + b",".join([made.encoded for made in shown]) + b"]"
        return crumbs


_Cell = tuple[int | None, float, float, float, bool]  # count, when, started, ended, ok


class _Shown(NamedTuple):
    item: JsonDict | _Cell  # the trail's own, kept so that its id is not taken by another's
    keys: tuple[str, ...]
    crumb: JsonDict
    encoded: bytes


class Trail(list[JsonDict]):
    """Breadcrumbs as an event carries them, with their JSON array (`encoded`) for the event's body."""

    encoded: bytes = b""


def _cell_crumb(execution_count: int | None, at: float, started: float, ended: float, ok: bool) -> JsonDict:
    return {
        "timestamp": at,
        "name": f"In [{execution_count}]" if execution_count else "Cell",
        "type": "process",
        "metaData": {"durationMs": round((ended - started) * 1000), "status": "ok" if ok else "error"},
    }


MAX_LOG_MESSAGE = 10_000  # characters kept of one log message
# Loggers of the notifier and the kernel's machinery, whose records ("No such comm target
# registered") say nothing of what the user's code did: they leave no breadcrumb.
MACHINERY_LOGGERS = (
    "bugsnag_ipython", "ipykernel", "IPKernelApp", "IPython", "Comm", "comm", "traitlets",
    "tornado", "jupyter_client", "zmq",
)


class LogBreadcrumbs:
    """Leaves a `log` breadcrumb for every `logging` record of level WARNING and above. It wraps the
    record factory: a root handler would make `logging.basicConfig()` do nothing."""

    def __init__(self, leave: Callable[[str, dict[str, Any], str], None]) -> None:
        self._leave = leave
        self._previous: Callable[..., logging.LogRecord] | None = None
        self._active = False

    def install(self) -> None:
        if self._previous is None:  # not in the factory chain yet (or no longer)
            self._previous = logging.getLogRecordFactory()
            logging.setLogRecordFactory(self._make_record)
        self._active = True

    def uninstall(self) -> None:
        self._active = False
        # Restore only if nobody wrapped the factory after us; else stay in their chain, inactive.
        if logging.getLogRecordFactory() == self._make_record and self._previous is not None:
            logging.setLogRecordFactory(self._previous)
            self._previous = None

    def _make_record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = (self._previous or logging.LogRecord)(*args, **kwargs)
        wanted = self._active and record.levelno >= logging.WARNING
        if wanted and record.name.partition(".")[0] not in MACHINERY_LOGGERS:
            try:
                message = record.getMessage()
                metadata = {"logLevel": record.levelname, "logger": record.name,
                            "message": message[:MAX_LOG_MESSAGE]}
                self._leave(message, metadata, "log")
            except Exception:
                pass  # a record whose message cannot be formatted fails where it is emitted
        return record
