"""Session and event payloads as BugSnag's API takes them (see PROTOCOL.md).

Pure functions: dicts in, dicts or bytes out. No I/O, no IPython.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .sessions import SessionSnapshot

SESSION_PAYLOAD_VERSION = "1.0"
EVENT_PAYLOAD_VERSION = "4.0"
REDACTED = "[REDACTED]"

JsonDict = dict[str, Any]


def iso8601(epoch_seconds: float) -> str:
    """UTC time with millisecond precision and a Z suffix, as every notifier sends it."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def session_payload(
    snapshot: SessionSnapshot,
    *,
    notifier: JsonDict,
    app: JsonDict,
    device: JsonDict,
    user: JsonDict,
) -> JsonDict:
    """One session in the per-session (mobile) form: its id is what events refer to."""
    session: JsonDict = {"id": snapshot.id, "startedAt": iso8601(snapshot.started_at)}
    if user:
        session["user"] = user
    return {"notifier": notifier, "app": app, "device": device, "sessions": [session]}


def event_session(snapshot: SessionSnapshot) -> JsonDict:
    return {
        "id": snapshot.id,
        "startedAt": iso8601(snapshot.started_at),
        "events": {"handled": snapshot.handled, "unhandled": snapshot.unhandled},
    }


def event(
    *,
    exceptions: list[JsonDict],
    unhandled: bool,
    severity: str,
    severity_reason: str,
    app: JsonDict,
    device: JsonDict,
    user: JsonDict,
    context: str | None = None,
    breadcrumbs: Iterable[JsonDict] = (),
    metadata: Mapping[str, Any] | None = None,
) -> JsonDict:
    """One event, without its session (attached last, after the on-error callbacks)."""
    body: JsonDict = {
        "exceptions": exceptions,
        "severity": severity,
        "severityReason": {"type": severity_reason},
        "unhandled": unhandled,
        "app": app,
        "device": device,
        "breadcrumbs": list(breadcrumbs),
        "metaData": dict(metadata or {}),
    }
    if user:
        body["user"] = user
    if context:
        body["context"] = context
    return body


def event_payload(api_key: str, notifier: JsonDict, events: list[JsonDict]) -> JsonDict:
    return {
        "apiKey": api_key,
        "payloadVersion": EVENT_PAYLOAD_VERSION,
        "notifier": notifier,
        "events": events,
    }


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot hold become their str()."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=_fallback).encode()


def _fallback(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def headers(api_key: str, payload_version: str, body: bytes, sent_at: float) -> dict[str, str]:
    """The headers of one send attempt; the digest is over the exact bytes sent."""
    return {
        "Content-Type": "application/json",
        "Bugsnag-Api-Key": api_key,
        "Bugsnag-Payload-Version": payload_version,
        "Bugsnag-Sent-At": iso8601(sent_at),
        "Bugsnag-Integrity": "sha1 " + hashlib.sha1(body).hexdigest(),
    }


def redact_event(event: JsonDict, keys: tuple[str, ...]) -> None:
    """Redact, in place, the parts of an event whose keys users choose: metadata, breadcrumb
    metadata and user fields. Source text (code windows, cell source) is not a key's value:
    `send_code` alone decides whether it is sent."""
    if not keys:
        return
    lowered = tuple(k.lower() for k in keys)
    if isinstance(event.get("metaData"), Mapping):
        event["metaData"] = _redact(event["metaData"], lowered, 0)
    if isinstance(event.get("user"), Mapping):
        event["user"] = _redact(event["user"], lowered, 0)
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, list):
        event["breadcrumbs"] = [
            {**crumb, "metaData": _redact(crumb["metaData"], lowered, 0)}
            if isinstance(crumb, Mapping) and isinstance(crumb.get("metaData"), Mapping)
            else crumb
            for crumb in crumbs
        ]


def redact(value: Any, keys: tuple[str, ...]) -> Any:
    """`value` with every mapping entry whose key contains one of `keys` (case-insensitively)
    replaced by [REDACTED], at any depth. `value` itself is not changed."""
    if not keys:
        return value
    lowered = tuple(k.lower() for k in keys)
    return _redact(value, lowered, 0)


def _redact(value: Any, keys: tuple[str, ...], depth: int) -> Any:
    if depth > 32:  # a cycle or absurd nesting: stop rather than recurse forever
        return "[DEPTH LIMIT]"
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _matches(str(k), keys) else _redact(v, keys, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, keys, depth + 1) for v in value]
    return value


def _matches(key: str, keys: tuple[str, ...]) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in keys)
