"""Checks a delivery request the way BugSnag's endpoints do. Pure: no I/O.

`check_request` looks at the headers and the exact body bytes of one request to the
sessions or the events endpoint and says what BugSnag would answer: 202 with the
parsed payload, 400 for a malformed request, or 401 when no API key was given.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Kind = Literal["sessions", "events"]

MAX_BODY_BYTES = 1_000_000
PAYLOAD_VERSIONS: Mapping[Kind, str] = {"sessions": "1.0", "events": "4.0"}
SEVERITIES = frozenset({"error", "warning", "info"})

_INTEGRITY = re.compile(r"sha1 ([0-9a-fA-F]{40})")


@dataclass(frozen=True)
class Verdict:
    """What the endpoint answers: the status, one sentence saying why, and the payload."""

    status: int
    reason: str
    payload: dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 202


class _Refusal(Exception):
    """Raised inside the shape checks; carries the 400 reason."""


def check_request(kind: Kind, headers: Mapping[str, str], body: bytes) -> Verdict:
    """Return BugSnag's verdict on one request to the `kind` endpoint."""
    if len(body) > MAX_BODY_BYTES:
        return Verdict(
            400, f"Payload too large: {len(body)} bytes is over the {MAX_BODY_BYTES} byte limit."
        )
    lowered = {name.lower(): value for name, value in headers.items()}
    parsed = _parse_json(body)

    api_key = lowered.get("bugsnag-api-key", "").strip()
    if not api_key:
        body_key = parsed.get("apiKey") if isinstance(parsed, dict) else None
        if kind == "sessions":
            return Verdict(401, "The Bugsnag-Api-Key header is missing.")
        if not (isinstance(body_key, str) and body_key.strip()):
            return Verdict(401, "No API key in the Bugsnag-Api-Key header or the payload's apiKey.")

    try:
        _check_headers(kind, lowered, body)
        if not isinstance(parsed, dict):
            raise _Refusal("The body must be a JSON object.")
        if kind == "sessions":
            _check_sessions_payload(parsed)
        else:
            _check_events_payload(parsed)
    except _Refusal as refusal:
        return Verdict(400, str(refusal))
    return Verdict(202, "Accepted.", parsed)


def _parse_json(body: bytes) -> object:
    """The decoded body, or None when it is not valid UTF-8 JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _check_headers(kind: Kind, headers: Mapping[str, str], body: bytes) -> None:
    integrity = headers.get("bugsnag-integrity")
    if integrity is not None:
        match = _INTEGRITY.fullmatch(integrity.strip())
        if match is None:
            raise _Refusal("The Bugsnag-Integrity header must be 'sha1 ' and 40 hex digits.")
        if match.group(1).lower() != hashlib.sha1(body).hexdigest():
            raise _Refusal("The Bugsnag-Integrity digest does not match the SHA-1 of the body.")

    content_type = headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise _Refusal("The Content-Type header must be application/json.")

    expected = PAYLOAD_VERSIONS[kind]
    version = headers.get("bugsnag-payload-version", "").strip()
    if version != expected:
        raise _Refusal(f"The Bugsnag-Payload-Version header must be {expected} for {kind}.")

    sent_at = headers.get("bugsnag-sent-at")
    if sent_at is not None and not _is_iso8601(sent_at.strip()):
        raise _Refusal("The Bugsnag-Sent-At header must be an ISO-8601 time.")


def _check_sessions_payload(payload: dict[str, Any]) -> None:
    _check_notifier(payload)
    _require_object(payload, "app", "app")
    _require_object(payload, "device", "device")
    sessions = _require_nonempty_list(payload, "sessions", "sessions")
    for index, session in enumerate(sessions):
        where = f"sessions[{index}]"
        if not isinstance(session, dict):
            raise _Refusal(f"The field {where} must be an object.")
        _require_string(session, "id", f"{where}.id")
        _require_time(session, "startedAt", f"{where}.startedAt")


def _check_events_payload(payload: dict[str, Any]) -> None:
    api_key = payload.get("apiKey")
    if api_key is not None and not isinstance(api_key, str):
        raise _Refusal("The field apiKey must be a string.")
    version = payload.get("payloadVersion")
    if version is not None and str(version) != PAYLOAD_VERSIONS["events"]:
        raise _Refusal("The field payloadVersion must be 4.0.")
    _check_notifier(payload)
    events = _require_nonempty_list(payload, "events", "events")
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if not isinstance(event, dict):
            raise _Refusal(f"The field {where} must be an object.")
        _check_event(event, where)


def _check_event(event: dict[str, Any], where: str) -> None:
    exceptions = _require_nonempty_list(event, "exceptions", f"{where}.exceptions")
    for index, exception in enumerate(exceptions):
        at = f"{where}.exceptions[{index}]"
        if not isinstance(exception, dict):
            raise _Refusal(f"The field {at} must be an object.")
        _require_string(exception, "errorClass", f"{at}.errorClass")
        if not isinstance(exception.get("stacktrace"), list):
            raise _Refusal(f"The field {at}.stacktrace must be a list.")

    if event.get("severity") not in SEVERITIES:
        raise _Refusal(f"The field {where}.severity must be error, warning or info.")
    if not isinstance(event.get("unhandled"), bool):
        raise _Refusal(f"The field {where}.unhandled must be true or false.")
    reason = _require_object(event, "severityReason", f"{where}.severityReason")
    _require_string(reason, "type", f"{where}.severityReason.type")

    if "session" in event:
        session = _require_object(event, "session", f"{where}.session")
        _require_string(session, "id", f"{where}.session.id")
        _require_time(session, "startedAt", f"{where}.session.startedAt")
        counts = _require_object(session, "events", f"{where}.session.events")
        for name in ("handled", "unhandled"):
            count = counts.get(name)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise _Refusal(f"The field {where}.session.events.{name} must be a whole number.")


def _check_notifier(payload: dict[str, Any]) -> None:
    notifier = _require_object(payload, "notifier", "notifier")
    _require_string(notifier, "name", "notifier.name")


def _require_object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise _Refusal(f"The field {where} must be an object.")
    return value


def _require_nonempty_list(parent: dict[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    if not isinstance(value, list) or not value:
        raise _Refusal(f"The field {where} must be a non-empty list.")
    return value


def _require_string(parent: dict[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise _Refusal(f"The field {where} must be a non-empty string.")
    return value


def _require_time(parent: dict[str, Any], key: str, where: str) -> None:
    value = parent.get(key)
    if not isinstance(value, str) or not _is_iso8601(value):
        raise _Refusal(f"The field {where} must be an ISO-8601 time.")


def _is_iso8601(text: str) -> bool:
    # fromisoformat accepts the "Z" suffix and millisecond fractions from Python 3.11 on.
    if "T" not in text:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
