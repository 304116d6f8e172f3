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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

MAX_BODY_BYTES = 1_000_000
# The Bugsnag-Payload-Version values the official notifiers send to each endpoint.
PAYLOAD_VERSIONS: Mapping[str, frozenset[str]] = {
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


class Refusal(Exception):
    """Raised inside the shape checks; carries the 400 reason."""


def too_large(body: bytes) -> Verdict | None:
    """The 400 for a body over BugSnag's size limit, or None."""
    if len(body) <= MAX_BODY_BYTES:
        return None
    return Verdict(400, f"Payload too large: {len(body)} bytes is over the {MAX_BODY_BYTES} byte limit.")


def check_content_type(headers: Mapping[str, str]) -> None:
    """Refuse anything but JSON; `headers` has lower-case names."""
    if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        raise Refusal("The Content-Type header must be application/json.")


def parse_json(body: bytes) -> object:
    """The decoded body, or None when it is not valid UTF-8 JSON (RecursionError propagates)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def check_request(kind: Literal["sessions", "events"], headers: Mapping[str, str], body: bytes) -> Verdict:
    """Return BugSnag's verdict on one request to the `kind` endpoint."""
    if (refused := too_large(body)) is not None:
        return refused
    lowered = {name.lower(): value for name, value in headers.items()}
    parsed = parse_json(body)

    if not lowered.get("bugsnag-api-key", "").strip():
        body_key = parsed.get("apiKey") if isinstance(parsed, dict) else None
        if kind == "sessions":
            return Verdict(401, "The Bugsnag-Api-Key header is missing.")
        if not (isinstance(body_key, str) and body_key.strip()):
            return Verdict(401, "No API key in the Bugsnag-Api-Key header or the payload's apiKey.")

    try:
        _check_headers(kind, lowered, body)
        if not isinstance(parsed, dict):
            raise Refusal("The body must be a JSON object.")
        if kind == "sessions":
            _check_sessions_payload(parsed)
        else:
            _check_events_payload(parsed)
    except Refusal as refusal:
        return Verdict(400, str(refusal))
    return Verdict(202, "Accepted.", parsed)


def _check_integrity(integrity: str, body: bytes) -> None:
    if sha1 := _SHA1_DIGEST.fullmatch(integrity):
        if sha1.group(1).lower() != hashlib.sha1(body).hexdigest():
            raise Refusal("The Bugsnag-Integrity digest does not match the SHA-1 of the body.")
    elif simple := _SIMPLE_DIGEST.fullmatch(integrity):
        if int(simple.group(1)) != len(body):
            raise Refusal(
                f"The Bugsnag-Integrity length {simple.group(1)} does not match the body's"
                f" {len(body)} bytes."
            )
    else:
        raise Refusal(
            "The Bugsnag-Integrity header must be 'sha1 ' and 40 hex digits, or 'simple ' and the"
            " body's length."
        )


def _check_headers(kind: str, headers: Mapping[str, str], body: bytes) -> None:
    integrity = headers.get("bugsnag-integrity")
    if integrity is not None:
        _check_integrity(integrity.strip(), body)
    check_content_type(headers)
    accepted = PAYLOAD_VERSIONS[kind]
    if headers.get("bugsnag-payload-version", "").strip() not in accepted:
        raise Refusal(f"The Bugsnag-Payload-Version header must be {_one_of(accepted)} for {kind}.")
    sent_at = headers.get("bugsnag-sent-at")
    if sent_at is not None and not _is_iso8601(sent_at.strip()):
        raise Refusal("The Bugsnag-Sent-At header must be an ISO-8601 time.")


def _check_sessions_payload(payload: dict[str, Any]) -> None:
    _require_string(_require_object(payload, "notifier", "notifier"), "name", "notifier.name")
    _require_object(payload, "app", "app")
    _require_object(payload, "device", "device")
    if "sessions" not in payload and "sessionCounts" in payload:
        # The server notifiers' form: how many sessions started in each minute, no ids.
        for count, where in _objects(payload, "sessionCounts", "sessionCounts"):
            _require_time(count, "startedAt", f"{where}.startedAt")
            _require_count(count, "sessionsStarted", f"{where}.sessionsStarted", "a whole number above 0", 1)
        return
    for session, where in _objects(payload, "sessions", "sessions"):
        _require_string(session, "id", f"{where}.id")
        _require_time(session, "startedAt", f"{where}.startedAt")


def _check_events_payload(payload: dict[str, Any]) -> None:
    api_key = payload.get("apiKey")
    if api_key is not None and not isinstance(api_key, str):
        raise Refusal("The field apiKey must be a string.")
    _check_payload_version(payload, "payloadVersion")
    _require_string(_require_object(payload, "notifier", "notifier"), "name", "notifier.name")
    for event, where in _objects(payload, "events", "events"):
        _check_event(event, where)


def _check_payload_version(parent: dict[str, Any], where: str) -> None:
    """`payloadVersion` is optional, at the top (android, python) or in each event (js)."""
    version = parent.get("payloadVersion")
    if version is not None and str(version) not in PAYLOAD_VERSIONS["events"]:
        raise Refusal(f"The field {where} must be {_one_of(PAYLOAD_VERSIONS['events'])}.")


def _check_event(event: dict[str, Any], where: str) -> None:
    _check_payload_version(event, f"{where}.payloadVersion")
    for exception, at in _objects(event, "exceptions", f"{where}.exceptions"):
        _require_string(exception, "errorClass", f"{at}.errorClass")
        if not isinstance(exception.get("stacktrace"), list):
            raise Refusal(f"The field {at}.stacktrace must be a list.")

    if event.get("severity") not in SEVERITIES:
        raise Refusal(f"The field {where}.severity must be error, warning or info.")
    if not isinstance(event.get("unhandled"), bool):
        raise Refusal(f"The field {where}.unhandled must be true or false.")
    reason = _require_object(event, "severityReason", f"{where}.severityReason")
    _require_string(reason, "type", f"{where}.severityReason.type")

    # bugsnag-python sends "session": null for an event outside any session.
    if event.get("session") is not None:
        session = _require_object(event, "session", f"{where}.session")
        _require_string(session, "id", f"{where}.session.id")
        _require_time(session, "startedAt", f"{where}.session.startedAt")
        counts = _require_object(session, "events", f"{where}.session.events")
        for name in ("handled", "unhandled"):
            _require_count(counts, name, f"{where}.session.events.{name}", "a whole number", 0)


def _one_of(values: frozenset[str]) -> str:
    ordered = sorted(values, key=lambda value: (float(value), len(value)))
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _objects(parent: dict[str, Any], key: str, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Each item of a non-empty list of objects, with where it is (`events[2]`)."""
    items = parent.get(key)
    if not isinstance(items, list) or not items:
        raise Refusal(f"The field {where} must be a non-empty list.")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise Refusal(f"The field {where}[{index}] must be an object.")
        yield item, f"{where}[{index}]"


def _require_object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise Refusal(f"The field {where} must be an object.")
    return value


def _require_string(parent: dict[str, Any], key: str, where: str) -> None:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise Refusal(f"The field {where} must be a non-empty string.")


def _require_count(parent: dict[str, Any], key: str, where: str, what: str, least: int) -> None:
    value = parent.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise Refusal(f"The field {where} must be {what}.")


def _require_time(parent: dict[str, Any], key: str, where: str) -> None:
    value = parent.get(key)
    if not isinstance(value, str) or not _is_iso8601(value):
        raise Refusal(f"The field {where} must be an ISO-8601 time.")


def _is_iso8601(text: str) -> bool:
    # fromisoformat accepts the "Z" suffix and millisecond fractions from Python 3.11 on.
    if "T" not in text:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
