"""What the collector accepts and refuses, checked without HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bugsnag_ipython.collector.validation import check_request
from tests.payloads import encode, event_payload, headers_for, session_payload


def test_a_good_session_payload_is_accepted_with_its_payload() -> None:
    body = encode(session_payload("s-1"))
    verdict = check_request("sessions", headers_for("sessions", body), body)
    assert verdict.status == 202
    assert verdict.payload is not None
    assert verdict.payload["sessions"][0]["id"] == "s-1"


def test_a_good_event_payload_is_accepted() -> None:
    body = encode(event_payload(session_id="s-1"))
    assert check_request("events", headers_for("events", body), body).status == 202


def test_header_names_are_case_insensitive() -> None:
    body = encode(session_payload())
    headers = {name.lower(): value for name, value in headers_for("sessions", body).items()}
    assert check_request("sessions", headers, body).status == 202


def test_the_integrity_header_is_optional() -> None:
    body = encode(session_payload())
    headers = headers_for("sessions", body)
    del headers["Bugsnag-Integrity"]
    assert check_request("sessions", headers, body).status == 202


@pytest.mark.parametrize("value", ["sha1 " + "0" * 40, "sha1 abc", "md5 " + "0" * 40])
def test_a_wrong_or_malformed_digest_is_refused(value: str) -> None:
    body = encode(session_payload())
    headers = {**headers_for("sessions", body), "Bugsnag-Integrity": value}
    verdict = check_request("sessions", headers, body)
    assert verdict.status == 400
    assert "Bugsnag-Integrity" in verdict.reason


def test_a_simple_digest_is_the_body_length_in_bytes() -> None:
    # Not ASCII: the length counts bytes, not characters.
    body = json.dumps(session_payload(stage="produção"), ensure_ascii=False).encode("utf-8")
    headers = {**headers_for("sessions", body), "Bugsnag-Integrity": f"simple {len(body)}"}
    assert check_request("sessions", headers, body).status == 202

    headers["Bugsnag-Integrity"] = f"simple {len(body.decode())}"
    verdict = check_request("sessions", headers, body)
    assert verdict.status == 400
    assert verdict.reason == (
        f"The Bugsnag-Integrity length {len(body.decode())} does not match the body's"
        f" {len(body)} bytes."
    )


def test_a_session_without_api_key_header_is_unauthorised() -> None:
    body = encode(session_payload())
    verdict = check_request("sessions", headers_for("sessions", body, api_key=""), body)
    assert verdict.status == 401


def test_an_event_may_carry_its_api_key_in_the_body_only() -> None:
    body = encode(event_payload())
    headers = headers_for("events", body)
    del headers["Bugsnag-Api-Key"]
    assert check_request("events", headers, body).status == 202


def test_an_event_without_any_api_key_is_unauthorised() -> None:
    payload = event_payload()
    del payload["apiKey"]
    body = encode(payload)
    verdict = check_request("events", headers_for("events", body, api_key=""), body)
    assert verdict.status == 401


@pytest.mark.parametrize(
    ("kind", "version"),
    # 4 and 1: bugsnag-js; 4.0 on sessions: bugsnag-python; the rest: android, cocoa, this package.
    [("events", "4"), ("events", "4.0"), ("sessions", "1"), ("sessions", "1.0"), ("sessions", "4.0")],
)
def test_every_payload_version_an_official_notifier_sends_is_accepted(kind: Any, version: str) -> None:
    body = encode(session_payload() if kind == "sessions" else event_payload())
    headers = {**headers_for(kind, body), "Bugsnag-Payload-Version": version}
    assert check_request(kind, headers, body).status == 202


@pytest.mark.parametrize(
    ("kind", "version"),
    [("sessions", "2.0"), ("sessions", "4"), ("sessions", ""), ("events", "1.0"), ("events", "")],
)
def test_the_wrong_payload_version_is_refused(kind: Any, version: str) -> None:
    body = encode(session_payload() if kind == "sessions" else event_payload())
    headers = {**headers_for(kind, body), "Bugsnag-Payload-Version": version}
    verdict = check_request(kind, headers, body)
    assert verdict.status == 400
    assert "Bugsnag-Payload-Version" in verdict.reason


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("application/json; charset=utf-8", 202), ("text/plain", 400), ("", 400)],
)
def test_the_content_type_must_be_json(content_type: str, status: int) -> None:
    body = encode(session_payload())
    headers = {**headers_for("sessions", body), "Content-Type": content_type}
    assert check_request("sessions", headers, body).status == status


def test_a_sent_at_that_is_not_a_time_is_refused() -> None:
    body = encode(session_payload())
    headers = {**headers_for("sessions", body), "Bugsnag-Sent-At": "yesterday"}
    verdict = check_request("sessions", headers, body)
    assert verdict.status == 400
    assert "Bugsnag-Sent-At" in verdict.reason


def test_a_body_over_one_megabyte_is_refused() -> None:
    body = b'{"padding": "' + b"x" * 1_000_000 + b'"}'
    verdict = check_request("sessions", headers_for("sessions", body), body)
    assert verdict.status == 400
    assert "too large" in verdict.reason


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    verdict = check_request("sessions", headers_for("sessions", body), body)
    assert verdict.status == 400
    assert "JSON object" in verdict.reason


def _broken_session(change: str) -> dict[str, Any]:
    payload = session_payload()
    if change == "notifier":
        del payload["notifier"]
    elif change == "notifier.name":
        del payload["notifier"]["name"]
    elif change == "app":
        payload["app"] = "jupyter"
    elif change == "device":
        del payload["device"]
    elif change == "sessions":
        payload["sessions"] = []
    elif change == "sessions[0].id":
        payload["sessions"][0]["id"] = 7
    elif change == "sessions[0].startedAt":
        payload["sessions"][0]["startedAt"] = "soon"
    return payload


@pytest.mark.parametrize(
    "field",
    [
        "notifier",
        "notifier.name",
        "app",
        "device",
        "sessions",
        "sessions[0].id",
        "sessions[0].startedAt",
    ],
)
def test_a_malformed_session_payload_is_refused_naming_the_field(field: str) -> None:
    body = encode(_broken_session(field))
    verdict = check_request("sessions", headers_for("sessions", body), body)
    assert verdict.status == 400
    assert f"field {field} " in verdict.reason


def _broken_event(change: str) -> dict[str, Any]:
    payload = event_payload(session_id="s-1")
    event = payload["events"][0]
    if change == "events":
        payload["events"] = {}
    elif change == "events[0].exceptions":
        event["exceptions"] = []
    elif change == "events[0].exceptions[0].errorClass":
        del event["exceptions"][0]["errorClass"]
    elif change == "events[0].exceptions[0].stacktrace":
        event["exceptions"][0]["stacktrace"] = "frames"
    elif change == "events[0].severity":
        event["severity"] = "fatal"
    elif change == "events[0].unhandled":
        event["unhandled"] = "yes"
    elif change == "events[0].severityReason.type":
        event["severityReason"] = {}
    elif change == "events[0].session.id":
        del event["session"]["id"]
    elif change == "events[0].session.startedAt":
        event["session"]["startedAt"] = 3
    elif change == "events[0].session.events":
        del event["session"]["events"]
    elif change == "events[0].session.events.unhandled":
        event["session"]["events"]["unhandled"] = True
    return payload


@pytest.mark.parametrize(
    "field",
    [
        "events",
        "events[0].exceptions",
        "events[0].exceptions[0].errorClass",
        "events[0].exceptions[0].stacktrace",
        "events[0].severity",
        "events[0].unhandled",
        "events[0].severityReason.type",
        "events[0].session.id",
        "events[0].session.startedAt",
        "events[0].session.events",
        "events[0].session.events.unhandled",
    ],
)
def test_a_malformed_event_payload_is_refused_naming_the_field(field: str) -> None:
    body = encode(_broken_event(field))
    verdict = check_request("events", headers_for("events", body), body)
    assert verdict.status == 400
    assert f"field {field} " in verdict.reason
    assert verdict.reason.endswith(".")


def _counted_sessions(**changes: Any) -> dict[str, Any]:
    payload = session_payload()
    del payload["sessions"]
    payload["sessionCounts"] = [{"startedAt": "2026-12-01T08:03:00", "sessionsStarted": 3}]
    payload["sessionCounts"][0].update(changes)
    return payload


def test_sessions_counted_per_minute_are_accepted() -> None:
    body = encode(_counted_sessions())
    verdict = check_request("sessions", headers_for("sessions", body), body)
    assert verdict.status == 202
    assert verdict.payload is not None
    assert verdict.payload["sessionCounts"][0]["sessionsStarted"] == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sessionsStarted": 0}, "sessionCounts[0].sessionsStarted"),
        ({"sessionsStarted": "3"}, "sessionCounts[0].sessionsStarted"),
        ({"startedAt": "a minute ago"}, "sessionCounts[0].startedAt"),
    ],
)
def test_a_malformed_session_count_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    body = encode(_counted_sessions(**change))
    verdict = check_request("sessions", headers_for("sessions", body), body)
    assert verdict.status == 400
    assert f"field {field} " in verdict.reason


def test_payload_version_may_be_in_each_event_instead_of_the_top() -> None:
    payload = event_payload()
    del payload["payloadVersion"]
    payload["events"][0]["payloadVersion"] = "4"
    body = encode(payload)
    assert check_request("events", headers_for("events", body), body).status == 202

    payload["events"][0]["payloadVersion"] = "5"
    body = encode(payload)
    verdict = check_request("events", headers_for("events", body), body)
    assert verdict.status == 400
    assert verdict.reason == "The field events[0].payloadVersion must be 4 or 4.0."


def test_an_event_whose_session_is_null_is_outside_any_session() -> None:
    payload = event_payload()
    payload["events"][0]["session"] = None  # what bugsnag-python sends outside a session
    body = encode(payload)
    assert check_request("events", headers_for("events", body), body).status == 202
