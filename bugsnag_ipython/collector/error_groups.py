"""Errors grouped as BugSnag groups them: by error class and the top in-project stack frame.

The message plays no part, so a KernelDied "in In [14]" and one "in In [15]" are one error
when they died in the same place. The location is the first frame marked `inProject` (the
first frame when none is), as file, method and line; a frame without a line number is placed
by file and method. An event without frames is grouped by its class alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .records import EventRecord


@dataclass(frozen=True)
class Location:
    """Where an error happened: the frame's file, method and line (None when not sent)."""

    file: str
    method: str
    line: int | None


GroupKey = tuple[str, Location | None]  # error class, location


@dataclass(frozen=True)
class ErrorGroup:
    """One error: its class and location, the first message seen, and how many events."""

    error_class: str
    location: Location | None
    message: str | None
    count: int

    @property
    def key(self) -> GroupKey:
        return self.error_class, self.location

    @property
    def where(self) -> str:
        """The location as one line: `file:line in method`, or "no stack frame"."""
        if self.location is None:
            return "no stack frame"
        line = "" if self.location.line is None else f":{self.location.line}"
        return f"{self.location.file}{line} in {self.location.method}"


def group_key(event: EventRecord) -> GroupKey:
    """The error an event belongs to."""
    return event.error_class, _top_frame(event)


def _top_frame(event: EventRecord) -> Location | None:
    exceptions = event.event.get("exceptions")
    first = exceptions[0] if isinstance(exceptions, list) and exceptions else None
    frames = first.get("stacktrace") if isinstance(first, dict) else None
    frames = [frame for frame in frames if isinstance(frame, dict)] if isinstance(frames, list) else []
    if not frames:
        return None
    frame = next((frame for frame in frames if frame.get("inProject") is True), frames[0])
    line = frame.get("lineNumber")
    return Location(
        str(frame.get("file") or "?"),
        str(frame.get("method") or "?"),
        line if isinstance(line, int) and not isinstance(line, bool) else None,
    )


def group_errors(events: Sequence[EventRecord]) -> list[ErrorGroup]:
    """The errors among `events`, most frequent first (ties: the one seen first)."""
    found: dict[GroupKey, list[EventRecord]] = {}
    for event in events:
        found.setdefault(group_key(event), []).append(event)
    groups = [
        ErrorGroup(key[0], key[1], members[0].message, len(members)) for key, members in found.items()
    ]
    # dicts keep insertion order and sorted() is stable: equal counts stay in the order seen.
    return sorted(groups, key=lambda group: -group.count)


def cut(groups: Sequence[ErrorGroup], most: int) -> tuple[tuple[ErrorGroup, ...], int]:
    """The first `most` of `groups`, and how many more there are."""
    return tuple(groups[:most]), max(0, len(groups) - most)
