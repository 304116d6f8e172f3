"""Putting right an event that an on-error callback left in a shape BugSnag refuses (answering
400): each broken part (`exceptions` deleted, an `errorClass` that is a number, a frame that is
a string) is put back from what the notifier made, or made the string or number BugSnag wants."""

from __future__ import annotations

from ..core.basics import JsonDict
from .payloads import printable


def before_callbacks(event: JsonDict) -> JsonDict:
    """What a repair may need of the event as the notifier made it: copies, since callbacks
    may change the event's own lists and dicts in place."""
    return {
        "exceptions": [_copy(entry) for entry in event.get("exceptions") or []],
        "unhandled": event.get("unhandled"),
        "severityReason": dict(event.get("severityReason") or {}),
    }


def repair_event(event: JsonDict, before: JsonDict) -> list[str]:
    """Make `event` one BugSnag accepts, in place; returns the names of the parts repaired."""
    repaired: list[str] = []
    exceptions = event.get("exceptions")
    entries = [e for e in exceptions if isinstance(e, dict)] if isinstance(exceptions, list) else []
    if not entries:
        event["exceptions"] = [_copy(entry) for entry in before["exceptions"]]
        repaired.append("exceptions")
    else:
        if len(entries) != len(exceptions or ()):
            repaired.append("exceptions")
        originals = before["exceptions"]
        for index, entry in enumerate(entries):
            original = originals[min(index, len(originals) - 1)]
            if _repair_exception(entry, original):
                repaired.append(f"exceptions[{index}]")
        event["exceptions"] = entries
    if not isinstance(event.get("unhandled"), bool):
        event["unhandled"] = before["unhandled"]
        repaired.append("unhandled")
    reason = event.get("severityReason")
    if not isinstance(reason, dict) or not _is_text(reason.get("type")):
        event["severityReason"] = dict(before["severityReason"])
        repaired.append("severityReason")
    for key, kind in (("metaData", dict), ("breadcrumbs", list), ("app", dict), ("device", dict)):
        if key in event and not isinstance(event[key], kind):
            event[key] = kind()
            repaired.append(key)
    if "user" in event and not isinstance(event["user"], dict):
        del event["user"]
        repaired.append("user")
    context = event.get("context")
    if context is not None and not isinstance(context, str):
        event["context"] = printable(context)
        repaired.append("context")
    return repaired


def _repair_exception(entry: JsonDict, original: JsonDict) -> bool:
    """Repair one `exceptions[]` entry in place; True if anything was wrong with it."""
    broken = False
    error_class = entry.get("errorClass")
    if not _is_text(error_class):
        shown = printable(error_class) if error_class is not None else ""
        entry["errorClass"] = shown or original["errorClass"]
        broken = True
    message = entry.get("message")
    if message is not None and not isinstance(message, str):
        entry["message"] = printable(message)
        broken = True
    if not _is_text(entry.get("type")):
        entry["type"] = "python"
        broken = True
    frames = entry.get("stacktrace")
    if not isinstance(frames, list):
        entry["stacktrace"] = [dict(frame) for frame in original.get("stacktrace", [])]
        return True
    kept = [frame for frame in frames if isinstance(frame, dict)]
    broken |= len(kept) != len(frames)
    for frame in kept:
        for key in ("file", "method"):
            if key in frame and not isinstance(frame[key], str):
                frame[key] = printable(frame[key])
                broken = True
        line = frame.get("lineNumber")
        if line is not None and (isinstance(line, bool) or not isinstance(line, int)):
            frame["lineNumber"] = _as_int(line)
            broken = True
        code = frame.get("code")
        valid = isinstance(code, dict) and all(isinstance(text, str) for text in code.values())
        if code is not None and not valid:
            del frame["code"]
            broken = True
    entry["stacktrace"] = kept
    return broken


def _copy(entry: JsonDict) -> JsonDict:
    return {**entry, "stacktrace": [dict(frame) for frame in entry.get("stacktrace", [])]}


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _as_int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except Exception:
        return 0
