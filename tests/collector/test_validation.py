"""What the collector accepts and refuses, checked without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from bugsnag_ipython.collector.validation import check_request

from .conftest import encode, event_payload, headers_for, session_payload


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
    ("kind", "version"), [("sessions", "4.0"), ("events", "1.0"), ("events", "")]
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
