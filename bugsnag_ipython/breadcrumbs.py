"""Breadcrumbs: the trail of what happened before an event, oldest dropped first."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from .payloads import iso8601

BREADCRUMB_TYPES = ("error", "log", "manual", "navigation", "process", "request", "state", "user")


class Breadcrumbs:
    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._trail: deque[dict[str, Any]] = deque(maxlen=limit)

    def resize(self, limit: int) -> None:
        with self._lock:
            if self._trail.maxlen != limit:
                self._trail = deque(self._trail, maxlen=limit)

    def leave(
        self, name: str, at: float, metadata: dict[str, Any] | None = None, type: str = "manual"
    ) -> None:
        if type not in BREADCRUMB_TYPES:
            type = "manual"
        crumb = {"timestamp": iso8601(at), "name": str(name)[:100], "type": type,
                 "metaData": dict(metadata or {})}
        with self._lock:
            self._trail.append(crumb)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._trail)
