"""Session (the mobile notifiers' form, 1.0) and event (4.0) payloads, their encoding and redaction."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..core.basics import JsonDict
from ..core.sessions import SessionSnapshot

SESSION_PAYLOAD_VERSION = "1.0"
EVENT_PAYLOAD_VERSION = "4.0"
REDACTED = "[REDACTED]"


def iso8601(epoch_seconds: float) -> str:
    """UTC time with millisecond precision and a Z suffix, as every notifier sends it."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def session_payload(snapshot: SessionSnapshot, *, notifier: JsonDict, app: JsonDict, device: JsonDict,
                    user: JsonDict) -> JsonDict:
    """One session in the per-session (mobile) form: its id is what events refer to."""
    session: JsonDict = {"id": snapshot.id, "startedAt": iso8601(snapshot.started_at)}
    if user:
        session["user"] = user
    return {"notifier": notifier, "app": app, "device": device, "sessions": [session]}


def event_session(snapshot: SessionSnapshot) -> JsonDict:
    """The session an event belongs to, with its counts of events so far."""
    counts = {"handled": snapshot.handled, "unhandled": snapshot.unhandled}
    return {"id": snapshot.id, "startedAt": iso8601(snapshot.started_at), "events": counts}


def event(*, exceptions: list[JsonDict], unhandled: bool, severity: str, severity_reason: str,
          app: JsonDict, device: JsonDict, user: JsonDict, context: str | None,
          breadcrumbs: list[JsonDict], metadata: JsonDict) -> JsonDict:
    """One event, without its session (attached last, after the on-error callbacks)."""
    body: JsonDict = {
        "exceptions": exceptions,
        "severity": severity,
        "severityReason": {"type": severity_reason},
        "unhandled": unhandled,
        "app": app,
        "device": device,
        "breadcrumbs": breadcrumbs,  # a Trail stays one
        "metaData": metadata,
    }
    if user:
        body["user"] = user
    if context:
        body["context"] = context
    return body


def event_payload(api_key: str, notifier: JsonDict, events: list[JsonDict]) -> JsonDict:
    """A request's payload of events; the events come last (see join_events)."""
    return {"apiKey": api_key, "payloadVersion": EVENT_PAYLOAD_VERSION, "notifier": notifier,
            "events": events}


_EVENTS_KEY = b'"events":['


def join_events(bodies: list[bytes]) -> tuple[bytes, int]:
    """One payload of the events of the first bodies that differ only in their events, and how many
    it took; spliced, not decoded (each is `{...,"events":[...]}`)."""
    first = bodies[0]
    cut = first.find(_EVENTS_KEY) + len(_EVENTS_KEY)
    if cut < len(_EVENTS_KEY) or not first.endswith(b"]}") or len(first) == cut + 2:
        return first, 1
    head = first[:cut]
    parts = [first[cut:-2]]
    for body in bodies[1:]:
        if not (body.startswith(head) and body.endswith(b"]}")) or len(body) == cut + 2:
            break
        parts.append(body[cut:-2])
    return b"".join((head, b",".join(parts), b"]}")), len(parts)


def encode(payload: Any) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot hold become their str(), keys it cannot hold are left out."""
    try:
        text = _ENCODER.encode(payload)
    except ValueError:  # NaN or infinity (which JSON has not), or an int too long to print
        text = _ENCODER.encode(_mapped(payload, _json_value))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a file name decoded with surrogateescape) as U+FFFD
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")


def _json_value(value: Any) -> Any:
    # NaN and infinities as the strings Python prints, an int too long to print as its size.
    if isinstance(value, float) and not math.isfinite(value):
        return repr(float(value))
    if isinstance(value, int):
        try:
            repr(value)
        except ValueError:
            return f"<int of {value.bit_length()} bits>"
    return value


def printable(value: object) -> str:
    """str(value), or a placeholder when that raises."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


# One encoder for every payload: json.dumps with options makes one per call (the error-cost target).
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=printable, skipkeys=True, allow_nan=False
)


def headers(api_key: str, payload_version: str, body: bytes, sent_at: float) -> dict[str, str]:
    """The headers of one send attempt; the digest is over the exact bytes sent."""
    import hashlib  # here, not at load: the sender needs it, loading does not

    return {
        "Content-Type": "application/json",
        "Bugsnag-Api-Key": api_key,
        "Bugsnag-Payload-Version": payload_version,
        "Bugsnag-Sent-At": iso8601(sent_at),
        "Bugsnag-Integrity": "sha1 " + hashlib.sha1(body).hexdigest(),
    }


def redact_event(event: JsonDict, keys: tuple[str, ...], *, breadcrumbs: bool = True) -> None:
    """Redact metadata, breadcrumb metadata and user fields by `keys`, into copies cut at a depth of 32."""
    for part in ("metaData", "user"):
        if isinstance(event.get(part), Mapping):
            event[part] = redact(event[part], keys)
    crumbs = event.get("breadcrumbs")
    if breadcrumbs and isinstance(crumbs, list):
        event["breadcrumbs"] = [
            {**crumb, "metaData": redact(crumb["metaData"], keys)}
            if isinstance(crumb, Mapping) and isinstance(crumb.get("metaData"), Mapping)
            else crumb
            for crumb in crumbs
        ]


def redact(value: Any, keys: tuple[str, ...]) -> Any:
    """A copy of `value` with the value of every key containing one of `keys` (any case) as [REDACTED]."""
    return _redact(value, _redaction(tuple(keys)), 0)


@functools.lru_cache(maxsize=8)
def _redaction(keys: tuple[str, ...]) -> re.Pattern[str] | None:
    # One pattern for all keys: a test per key costs more than all else in redacting an event.
    return re.compile("|".join(re.escape(key.lower()) for key in keys)) if keys else None


_PLAIN = (str, int, float, bool, type(None))


def _redact(value: Any, keys: re.Pattern[str] | None, depth: int) -> Any:
    if type(value) in _PLAIN or not isinstance(value, Mapping | list | tuple):
        return value
    if depth > 32:  # a cycle or absurd nesting: stop rather than recurse forever
        return "[DEPTH LIMIT]"
    if isinstance(value, list | tuple):
        return [_redact(v, keys, depth + 1) for v in value]
    redacted: JsonDict = {}
    for k, v in value.items():
        key = k if type(k) is str else printable(k)  # a key whose str() raises is named so
        hidden = keys is not None and keys.search(key.lower()) is not None
        redacted[key] = REDACTED if hidden else _redact(v, keys, depth + 1)
    return redacted


def strings_replaced(value: Any, replace: Callable[[str], str]) -> Any:
    """A copy of `value` (JSON-like) with `replace` applied to each string in it, keys too."""
    return _mapped(value, lambda item: replace(item) if isinstance(item, str) else item)


def _mapped(value: Any, leaf: Callable[[Any], Any], depth: int = 0) -> Any:
    # A copy with `leaf` applied to every key and plain value, cut at a depth of 64 (a cycle).
    if not isinstance(value, Mapping | list | tuple):
        return leaf(value)
    if depth > 64:
        return "[DEPTH LIMIT]"
    if isinstance(value, Mapping):
        return {leaf(k): _mapped(v, leaf, depth + 1) for k, v in value.items()}
    return [_mapped(v, leaf, depth + 1) for v in value]
