"""Checks a request to the sessions, events or builds endpoint as BugSnag checks it, from its
headers and exact body bytes: what BugSnag takes from every official notifier, sessions listed or
counted per minute, and a build's optional fields also as null (how clients leave one unset)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .store import Kind

MAX_BODY_BYTES = 1_000_000
# The Bugsnag-Payload-Version values the official notifiers send to each endpoint.
PAYLOAD_VERSIONS: Mapping[str, tuple[str, ...]] = {
    "sessions": ("1", "1.0", "4.0"),  # 4.0: bugsnag-python sends its event version
    "events": ("4", "4.0"),
}
SEVERITIES = frozenset({"error", "warning", "info"})


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
    """A 400 answer's reason, raised inside the checks."""


def parse_json(body: bytes) -> object:
    """The decoded body, or None when it is not valid UTF-8 JSON (or nested too deeply to parse)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def check_request(kind: Kind, headers: Mapping[str, str], body: bytes) -> Verdict:
    """Return BugSnag's verdict on one request to the `kind` endpoint: 202 (a build: 200) with
    the parsed payload, 400 for a malformed request, or 401 when no API key was given."""
    if len(body) > MAX_BODY_BYTES:
        return Verdict(400, f"Payload too large: {len(body)} bytes is over the {MAX_BODY_BYTES} byte limit.")
    lowered = {name.lower(): value for name, value in headers.items()}
    parsed = parse_json(body)

    if kind != "builds" and not lowered.get("bugsnag-api-key", "").strip():
        if kind == "sessions":
            return Verdict(401, "The Bugsnag-Api-Key header is missing.")
        body_key = parsed.get("apiKey") if isinstance(parsed, dict) else None
        if not (isinstance(body_key, str) and body_key.strip()):
            return Verdict(401, "No API key in the Bugsnag-Api-Key header or the payload's apiKey.")

    try:
        _check_headers(kind, lowered, body)
        if not isinstance(parsed, dict):
            raise Refusal("The body must be a JSON object.")
        {"sessions": _check_sessions, "events": _check_events, "builds": _check_build}[kind](parsed)
    except Refusal as refusal:
        return Verdict(400, str(refusal))
    return Verdict(200 if kind == "builds" else 202, "Accepted.", parsed)


def _check_headers(kind: Kind, headers: Mapping[str, str], body: bytes) -> None:
    """Check the headers (their names lower-case); a build's only need to say it is JSON."""
    integrity = headers.get("bugsnag-integrity")
    if integrity is not None and kind != "builds":
        _check_integrity(integrity.strip(), body)
    if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        raise Refusal("The Content-Type header must be application/json.")
    if kind == "builds":
        return
    versions = PAYLOAD_VERSIONS[kind]
    if headers.get("bugsnag-payload-version", "").strip() not in versions:
        raise Refusal(f"The Bugsnag-Payload-Version header must be {_one_of(versions)} for {kind}.")
    sent_at = headers.get("bugsnag-sent-at")
    if sent_at is not None and not _is_iso8601(sent_at.strip()):
        raise Refusal("The Bugsnag-Sent-At header must be an ISO-8601 time.")


def _check_integrity(integrity: str, body: bytes) -> None:
    method, _, value = integrity.partition(" ")
    if method == "sha1" and re.fullmatch("[0-9a-fA-F]{40}", value):
        if value.lower() != hashlib.sha1(body).hexdigest():
            raise Refusal("The Bugsnag-Integrity digest does not match the SHA-1 of the body.")
    elif method == "simple" and re.fullmatch("[0-9]+", value):
        if int(value) != len(body):
            raise Refusal(f"The Bugsnag-Integrity length {value} does not match the body's {len(body)}"
                          " bytes.")
    else:
        raise Refusal("The Bugsnag-Integrity header must be 'sha1 ' and 40 hex digits, or 'simple ' and"
                      " the body's length.")


def _one_of(values: tuple[str, ...]) -> str:
    return ", ".join(values[:-1]) + " or " + values[-1]


_EVENT_VERSION = _one_of(PAYLOAD_VERSIONS["events"])
_API_KEY = "the project's API key: 32 hexadecimal digits"
_SOURCE_CONTROL = "an object with repository and revision"
_METADATA = "an object whose values are strings"
# What a field must be, in the words a refusal says it in, and the test of its value.
_SHAPES: Mapping[str, Callable[[Any], bool]] = {
    "an object": lambda value: isinstance(value, dict),
    "a list": lambda value: isinstance(value, list),
    "a string": lambda value: isinstance(value, str),
    "a non-empty string": lambda value: isinstance(value, str) and value != "",
    "a non-empty string or null": lambda value: isinstance(value, str) and value != "",
    "an ISO-8601 time": lambda value: isinstance(value, str) and _is_iso8601(value),
    "true or false": lambda value: isinstance(value, bool),
    "a whole number": lambda value: type(value) is int and value >= 0,  # JSON's true is no number
    "a whole number above 0": lambda value: type(value) is int and value >= 1,
    "error, warning or info": lambda value: isinstance(value, str) and value in SEVERITIES,
    _EVENT_VERSION: lambda value: str(value) in PAYLOAD_VERSIONS["events"],
    _API_KEY: lambda value: isinstance(value, str) and re.fullmatch("[0-9a-fA-F]{32}", value) is not None,
    _SOURCE_CONTROL: lambda value: isinstance(value, dict),
    _METADATA: lambda value: isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
}


def _field(parent: dict[str, Any], key: str, at: str, shape: str, *, optional: bool = False) -> Any:
    """`parent[key]`, refused unless it has `shape` (or is absent or null, when `optional`);
    `at` is where `parent` is in the payload ("events[0].")."""
    value = parent.get(key)
    if (value is None and optional) or _SHAPES[shape](value):
        return value
    raise Refusal(f"The field {at}{key} must be {shape}.")


def _objects(parent: dict[str, Any], key: str, at: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Each item of a non-empty list of objects, with where it is ("events[2].")."""
    items = parent.get(key)
    if not isinstance(items, list) or not items:
        raise Refusal(f"The field {at}{key} must be a non-empty list.")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise Refusal(f"The field {at}{key}[{index}] must be an object.")
        yield item, f"{at}{key}[{index}]."


def _check_sessions(payload: dict[str, Any]) -> None:
    _field(_field(payload, "notifier", "", "an object"), "name", "notifier.", "a non-empty string")
    _field(payload, "app", "", "an object")
    _field(payload, "device", "", "an object")
    if "sessions" not in payload and "sessionCounts" in payload:
        # The server notifiers' form: how many sessions started in each minute, no ids.
        for count, at in _objects(payload, "sessionCounts", ""):
            _field(count, "startedAt", at, "an ISO-8601 time")
            _field(count, "sessionsStarted", at, "a whole number above 0")
        return
    for session, at in _objects(payload, "sessions", ""):
        _field(session, "id", at, "a non-empty string")
        _field(session, "startedAt", at, "an ISO-8601 time")


def _check_events(payload: dict[str, Any]) -> None:
    _field(payload, "apiKey", "", "a string", optional=True)
    # `payloadVersion` is optional, at the top (android, python) or in each event (js).
    _field(payload, "payloadVersion", "", _EVENT_VERSION, optional=True)
    _field(_field(payload, "notifier", "", "an object"), "name", "notifier.", "a non-empty string")
    for event, at in _objects(payload, "events", ""):
        _field(event, "payloadVersion", at, _EVENT_VERSION, optional=True)
        for exception, place in _objects(event, "exceptions", at):
            _field(exception, "errorClass", place, "a non-empty string")
            _field(exception, "stacktrace", place, "a list")
        _field(event, "severity", at, "error, warning or info")
        _field(event, "unhandled", at, "true or false")
        reason = _field(event, "severityReason", at, "an object")
        _field(reason, "type", f"{at}severityReason.", "a non-empty string")
        # bugsnag-python sends "session": null for an event outside any session.
        session = _field(event, "session", at, "an object", optional=True)
        if session is not None:
            _field(session, "id", f"{at}session.", "a non-empty string")
            _field(session, "startedAt", f"{at}session.", "an ISO-8601 time")
            counts = _field(session, "events", f"{at}session.", "an object")
            for name in ("handled", "unhandled"):
                _field(counts, name, f"{at}session.events.", "a whole number")


def _check_build(build: dict[str, Any]) -> None:
    _field(build, "apiKey", "", _API_KEY)
    if not _field(build, "appVersion", "", "a non-empty string").strip():
        raise Refusal("The field appVersion must be a non-empty string.")
    for name in ("releaseStage", "builderName", "buildTool", "appVersionCode", "appBundleVersion"):
        _field(build, name, "", "a non-empty string or null", optional=True)
    source = _field(build, "sourceControl", "", _SOURCE_CONTROL, optional=True)
    if source is not None:
        _field(source, "repository", "sourceControl.", "a non-empty string")
        _field(source, "revision", "sourceControl.", "a non-empty string")
        _field(source, "provider", "sourceControl.", "a non-empty string or null", optional=True)
    _field(build, "metadata", "", _METADATA, optional=True)
    _field(build, "autoAssignRelease", "", "true or false", optional=True)


def _is_iso8601(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return "T" in text
