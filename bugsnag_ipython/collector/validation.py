"""Checks a delivery request the way BugSnag's endpoints do. Pure: no I/O.

`check_request` looks at the headers and the exact body bytes of one request to the
sessions or the events endpoint and says what BugSnag would answer: 202 with the
parsed payload, 400 for a malformed request, or 401 when no API key was given.

It takes what BugSnag takes from every official notifier, not only what this package sends:
sessions one by one (`sessions[]`: android, cocoa, browsers) or counted per minute
(`sessionCounts[]`: bugsnag-python, bugsnag-js on Node); payload versions `4` (bugsnag-js) and
`4.0` for events, `1` (bugsnag-js), `1.0` and `4.0` (bugsnag-python) for sessions;
`payloadVersion` at the top of the body or in each event (bugsnag-js); and the
`Bugsnag-Integrity` header checked when sent (`sha1 <hex>`, or `simple <body length>`), accepted
when not (bugsnag-python sends none).
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
# The Bugsnag-Payload-Version values the official notifiers send to each endpoint.
PAYLOAD_VERSIONS: Mapping[Kind, frozenset[str]] = {
    "sessions": frozenset({"1", "1.0", "4.0"}),  # 4.0: bugsnag-python sends its event version
    "events": frozenset({"4", "4.0"}),
}
SEVERITIES = frozenset({"error", "warning", "info"})

_SHA1_DIGEST = re.compile(r"sha1 ([0-9a-fA-F]{40})")
_SIMPLE_DIGEST = re.compile(r"simple ([0-9]+)")


@dataclass(frozen=True)
class Verdict:
    """What the endpoint answers: the status, one sentence saying why, and the payload."""

    status: int
    reason: str
    payload: dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.status in (200, 202)  # 200: the Build API's answer


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


def _check_integrity(integrity: str, body: bytes) -> None:
    sha1 = _SHA1_DIGEST.fullmatch(integrity)
    if sha1 is not None:
        if sha1.group(1).lower() != hashlib.sha1(body).hexdigest():
            raise _Refusal("The Bugsnag-Integrity digest does not match the SHA-1 of the body.")
        return
    simple = _SIMPLE_DIGEST.fullmatch(integrity)
    if simple is not None:
        if int(simple.group(1)) != len(body):
            raise _Refusal(
                f"The Bugsnag-Integrity length {simple.group(1)} does not match the body's"
                f" {len(body)} bytes."
            )
        return
    raise _Refusal(
        "The Bugsnag-Integrity header must be 'sha1 ' and 40 hex digits, or 'simple ' and the"
        " body's length."
    )


def _check_headers(kind: Kind, headers: Mapping[str, str], body: bytes) -> None:
    integrity = headers.get("bugsnag-integrity")
    if integrity is not None:
        _check_integrity(integrity.strip(), body)

    content_type = headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise _Refusal("The Content-Type header must be application/json.")

    accepted = PAYLOAD_VERSIONS[kind]
    version = headers.get("bugsnag-payload-version", "").strip()
    if version not in accepted:
        raise _Refusal(
            f"The Bugsnag-Payload-Version header must be {_one_of(accepted)} for {kind}."
        )

    sent_at = headers.get("bugsnag-sent-at")
    if sent_at is not None and not _is_iso8601(sent_at.strip()):
        raise _Refusal("The Bugsnag-Sent-At header must be an ISO-8601 time.")


def _check_sessions_payload(payload: dict[str, Any]) -> None:
    _check_notifier(payload)
    _require_object(payload, "app", "app")
    _require_object(payload, "device", "device")
    if "sessions" not in payload and "sessionCounts" in payload:
        _check_session_counts(payload)
        return
    sessions = _require_nonempty_list(payload, "sessions", "sessions")
    for index, session in enumerate(sessions):
        where = f"sessions[{index}]"
        if not isinstance(session, dict):
            raise _Refusal(f"The field {where} must be an object.")
        _require_string(session, "id", f"{where}.id")
        _require_time(session, "startedAt", f"{where}.startedAt")


def _check_session_counts(payload: dict[str, Any]) -> None:
    """The server notifiers' form: how many sessions started in each minute, no ids."""
    counts = _require_nonempty_list(payload, "sessionCounts", "sessionCounts")
    for index, count in enumerate(counts):
        where = f"sessionCounts[{index}]"
        if not isinstance(count, dict):
            raise _Refusal(f"The field {where} must be an object.")
        _require_time(count, "startedAt", f"{where}.startedAt")
        started = count.get("sessionsStarted")
        if isinstance(started, bool) or not isinstance(started, int) or started < 1:
            raise _Refusal(f"The field {where}.sessionsStarted must be a whole number above 0.")


def _check_events_payload(payload: dict[str, Any]) -> None:
    api_key = payload.get("apiKey")
    if api_key is not None and not isinstance(api_key, str):
        raise _Refusal("The field apiKey must be a string.")
    _check_payload_version(payload, "payloadVersion")
    _check_notifier(payload)
    events = _require_nonempty_list(payload, "events", "events")
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if not isinstance(event, dict):
            raise _Refusal(f"The field {where} must be an object.")
        _check_event(event, where)


def _check_payload_version(parent: dict[str, Any], where: str) -> None:
    """`payloadVersion` is optional, at the top (android, python) or in each event (js)."""
    version = parent.get("payloadVersion")
    if version is not None and str(version) not in PAYLOAD_VERSIONS["events"]:
        raise _Refusal(f"The field {where} must be {_one_of(PAYLOAD_VERSIONS['events'])}.")


def _check_event(event: dict[str, Any], where: str) -> None:
    _check_payload_version(event, f"{where}.payloadVersion")
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

    # bugsnag-python sends "session": null for an event outside any session.
    if event.get("session") is not None:
        session = _require_object(event, "session", f"{where}.session")
        _require_string(session, "id", f"{where}.session.id")
        _require_time(session, "startedAt", f"{where}.session.startedAt")
        counts = _require_object(session, "events", f"{where}.session.events")
        for name in ("handled", "unhandled"):
            count = counts.get(name)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise _Refusal(f"The field {where}.session.events.{name} must be a whole number.")


def _one_of(values: frozenset[str]) -> str:
    ordered = sorted(values, key=lambda value: (float(value), len(value)))
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


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
