"""The collector as BugSnag's Build API: builds posted over real HTTP, at `/builds` and at `/`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.collector import Collector, Store, build_report, check_request
from tests.collector_support import ScriptedCollector
from tests.payloads import API_KEY, build_payload, encode, event_payload, post, session_payload


def test_a_good_build_is_answered_as_the_build_api_answers_and_stored(collector: Collector) -> None:
    payload = build_payload("2.4.0", revision="9" * 40, builder="alice")
    payload["metadata"] = {"notebook": "etl.ipynb"}
    payload["autoAssignRelease"] = True
    response = post(collector.builds_url, "builds", payload)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "warnings": []}
    [build] = collector.store.builds()
    assert (build.app_version, build.release_stage, build.builder_name) == ("2.4.0", "production", "alice")
    assert (build.provider, build.repository, build.revision) == (
        "github",
        "https://github.com/example/notebooks",
        "9" * 40,
    )
    assert build.api_key == API_KEY and build.build["metadata"] == {"notebook": "etl.ipynb"}
    [request] = collector.store.requests("builds")
    assert (request.status, request.reason) == (200, "Accepted.")


def test_the_root_takes_builds_events_and_sessions_told_apart_by_shape(collector: Collector) -> None:
    assert post(collector.url + "/", "builds", build_payload("3.0")).status_code == 200
    assert post(collector.url, "builds", build_payload("3.1")).status_code == 200
    for kind, payload in (("events", event_payload()), ("sessions", session_payload("s-1"))):
        response = post(collector.url + "/", kind, payload)
        assert response.status_code == 202, response.text

    assert [build.app_version for build in collector.store.builds()] == ["3.0", "3.1"]
    assert collector.store.count("events") == 1 and collector.store.count("sessions") == 1
    kinds = [request.kind for request in collector.store.requests()]
    assert kinds == ["builds", "builds", "events", "sessions"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"apiKey": None}, "The field apiKey must be the project's API key: 32 hexadecimal digits."),
        ({"apiKey": "0123"}, "The field apiKey must be the project's API key: 32 hexadecimal digits."),
        ({"appVersion": None}, "The field appVersion must be a non-empty string."),
        ({"appVersion": " "}, "The field appVersion must be a non-empty string."),
        ({"appVersion": 3}, "The field appVersion must be a non-empty string."),
        ({"releaseStage": ""}, "The field releaseStage must be a non-empty string or null."),
        ({"builderName": 7}, "The field builderName must be a non-empty string or null."),
        (
            {"sourceControl": "github"},
            "The field sourceControl must be an object with repository and revision.",
        ),
        ({"sourceControl": {"provider": "github", "repository": "r"}},
         "The field sourceControl.revision must be a non-empty string."),
        ({"metadata": {"n": 1}}, "The field metadata must be an object whose values are strings."),
        ({"autoAssignRelease": 1}, "The field autoAssignRelease must be true or false."),
    ],
)
def test_a_bad_build_is_refused_with_one_sentence_naming_the_field(
    collector: Collector, change: dict[str, Any], reason: str
) -> None:
    payload = build_payload()
    for name, value in change.items():
        if value is None:
            del payload[name]
        else:
            payload[name] = value
    response = post(collector.builds_url, "builds", payload)

    assert response.status_code == 400
    # `errors` is what bugsnag-build-reporter prints of a 400; `error` what the other endpoints say.
    assert response.json() == {"error": reason, "errors": [reason]}
    assert collector.store.builds() == []
    [request] = collector.store.requests("builds")
    assert (request.status, request.reason) == (400, reason)


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"not json", {}, "The body must be a JSON object."),
        (b"[1, 2]", {}, "The body must be a JSON object."),
        (
            encode(build_payload()),
            {"Content-Type": "text/plain"},
            "The Content-Type header must be application/json.",
        ),
    ],
)
def test_a_body_that_is_no_build_is_refused(body: bytes, headers: dict[str, str], reason: str) -> None:
    verdict = check_request("builds", {"Content-Type": "application/json", **headers}, body)
    assert (verdict.status, verdict.reason) == (400, reason)


def test_anything_else_at_the_root_is_checked_as_a_build(collector: Collector) -> None:
    response = post(collector.url + "/", "builds", {"appVersion": "1.0"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("The field apiKey")


def test_nulls_are_unset_fields_as_the_official_clients_send_them() -> None:
    payload = {**build_payload(), "releaseStage": None, "metadata": None, "sourceControl": None,
               "autoAssignRelease": None, "appVersionCode": None}
    body = encode(payload)
    assert check_request("builds", {"Content-Type": "application/json"}, body).status == 200


def test_a_database_from_before_builds_opens_and_takes_builds(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:  # the requests table as earlier versions made it, no builds
        old.execute(
            "CREATE TABLE requests (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL,"
            " kind TEXT NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL,"
            " headers TEXT NOT NULL, body TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO requests VALUES (1, '2026-01-01T00:00:00.000Z', 'events', 400, 'x', '{}', '')"
        )
    old.close()
    with Collector(path) as collector:
        assert collector.store.builds() == []
        assert post(collector.builds_url, "builds", build_payload("5.0")).status_code == 200
    with Store(path) as store:
        assert [build.app_version for build in store.builds()] == ["5.0"]
        report = build_report(store)
    assert report.requests_received == 2
    assert [(release.app_version, release.sessions) for release in report.releases] == [("5.0", 0)]


def test_a_scripted_failure_answers_a_build_too(collector: ScriptedCollector) -> None:
    collector.script("builds", 503)
    assert post(collector.builds_url, "builds", build_payload()).status_code == 503
    assert post(collector.builds_url, "builds", build_payload()).status_code == 200
    assert json.loads(collector.store.requests("builds")[0].body)["appVersion"] == "1.2.3"
