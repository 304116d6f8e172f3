"""The collector over real HTTP: storing, refusing, keep-alive and fault injection."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from bugsnag_ipython.collector import Collector, Store
from tests.collector_support import ScriptedCollector
from tests.payloads import API_KEY, encode, event_payload, headers_for, post, session_payload


def test_a_good_session_is_stored_with_its_headers(collector: Collector) -> None:
    response = post(collector.sessions_url, "sessions", session_payload("s-1", version="2.0.0"))
    assert response.status_code == 202
    assert response.json() == {"status": "ok"}

    [session] = collector.store.sessions()
    assert (session.session_id, session.app_version, session.api_key) == ("s-1", "2.0.0", API_KEY)
    [request] = collector.store.requests("sessions")
    assert request.status == 202
    assert request.header("bugsnag-payload-version") == "1.0"
    assert request.header("Bugsnag-Integrity") is not None
    assert json.loads(request.body)["sessions"][0]["id"] == "s-1"


def test_a_good_event_is_stored_with_its_session_counts(collector: Collector) -> None:
    payload = event_payload(session_id="s-1", handled_count=2, unhandled_count=1)
    assert post(collector.notify_url, "events", payload).status_code == 202

    [event] = collector.store.events()
    assert event.error_class == "ZeroDivisionError"
    assert event.message == "division by zero"
    assert event.unhandled is True
    assert (event.session_id, event.session_handled, event.session_unhandled) == ("s-1", 2, 1)
    assert event.event["context"] == "notebook.ipynb"


def test_a_bad_digest_is_refused_and_recorded(collector: Collector) -> None:
    response = post(
        collector.sessions_url, "sessions", session_payload(), Bugsnag_Integrity="sha1 " + "0" * 40
    )
    assert response.status_code == 400
    assert "Bugsnag-Integrity" in response.json()["error"]
    assert collector.store.sessions() == []
    [request] = collector.store.requests()
    assert (request.status, request.reason) == (400, response.json()["error"])


def test_a_request_without_digest_is_accepted(collector: Collector) -> None:
    body = encode(session_payload())
    headers = headers_for("sessions", body)
    del headers["Bugsnag-Integrity"]
    assert post(collector.sessions_url, "sessions", body, headers=headers).status_code == 202


def test_a_request_without_api_key_is_unauthorised(collector: Collector) -> None:
    response = post(collector.sessions_url, "sessions", session_payload(), Bugsnag_Api_Key="")
    assert response.status_code == 401
    assert "Bugsnag-Api-Key" in response.json()["error"]


def test_the_wrong_payload_version_is_refused(collector: Collector) -> None:
    response = post(collector.notify_url, "events", event_payload(), Bugsnag_Payload_Version="1.0")
    assert response.status_code == 400


def test_a_malformed_event_is_refused_naming_the_field(collector: Collector) -> None:
    payload = event_payload()
    payload["events"][0]["severity"] = "fatal"
    response = post(collector.notify_url, "events", payload)
    assert response.status_code == 400
    assert "events[0].severity" in response.json()["error"]


def test_a_body_over_one_megabyte_is_refused(collector: Collector) -> None:
    payload = session_payload()
    payload["app"]["padding"] = "x" * 1_000_001
    response = post(collector.sessions_url, "sessions", payload)
    assert response.status_code == 400
    assert "too large" in response.json()["error"]


def test_health_and_unknown_paths(collector: Collector) -> None:
    assert requests.get(collector.url + "/health").status_code == 200
    assert requests.get(collector.url + "/elsewhere").status_code == 404
    assert requests.post(collector.url + "/elsewhere", data=b"{}").status_code == 404


def test_requests_on_one_session_share_one_connection(collector: ScriptedCollector) -> None:
    with requests.Session() as http:
        for _ in range(3):
            assert post(collector.sessions_url, "sessions", session_payload(), http=http).ok
            assert post(collector.notify_url, "events", event_payload(), http=http).ok
    assert collector.connection_count == 1
    assert len(collector.store.sessions()) == 3


def test_scripted_statuses_come_first_then_normal_service(collector: ScriptedCollector) -> None:
    collector.script("sessions", 503, (429, {"Retry-After": "2"}))
    first = post(collector.sessions_url, "sessions", session_payload())
    second = post(collector.sessions_url, "sessions", session_payload())
    third = post(collector.sessions_url, "sessions", session_payload())

    assert [first.status_code, second.status_code, third.status_code] == [503, 429, 202]
    assert second.headers["Retry-After"] == "2"
    assert [r.status for r in collector.store.requests()] == [503, 429, 202]
    assert len(collector.store.sessions()) == 1


def test_a_script_for_one_endpoint_leaves_the_other_alone(collector: ScriptedCollector) -> None:
    collector.script("notify", 500)
    assert post(collector.sessions_url, "sessions", session_payload()).status_code == 202
    assert post(collector.notify_url, "events", event_payload()).status_code == 500
    collector.script(None, 401)
    assert post(collector.notify_url, "events", event_payload()).status_code == 401
    assert post(collector.sessions_url, "sessions", session_payload()).status_code == 202


def test_going_down_refuses_connections_and_coming_back_reuses_the_port(
    collector: ScriptedCollector,
) -> None:
    port = collector.port
    with requests.Session() as http:
        assert post(collector.sessions_url, "sessions", session_payload(), http=http).ok
        collector.go_down()
        with pytest.raises(requests.ConnectionError):
            post(collector.sessions_url, "sessions", session_payload(), http=http)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # The port stays the collector's while it is down: nothing else can take it meanwhile.
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", port))

    collector.come_back()
    assert collector.port == port
    assert post(collector.sessions_url, "sessions", session_payload()).status_code == 202
    assert len(collector.store.sessions()) == 2


def test_a_hung_collector_times_clients_out_and_lets_go(collector: ScriptedCollector) -> None:
    collector.hang()
    with pytest.raises(requests.ReadTimeout):
        post(collector.sessions_url, "sessions", session_payload(), timeout=0.5)
    [request] = collector.store.requests()
    assert request.status == 0

    collector.unhang()
    assert post(collector.sessions_url, "sessions", session_payload()).status_code == 202


def test_stop_does_not_wait_for_hung_requests(tmp_path: Path) -> None:
    collector = ScriptedCollector(tmp_path / "db.sqlite").start()
    collector.hang()
    outcome: list[Any] = []

    def send() -> None:
        try:
            outcome.append(post(collector.sessions_url, "sessions", session_payload(), timeout=10))
        except requests.RequestException as error:
            outcome.append(error)

    client = threading.Thread(target=send)
    client.start()
    deadline = time.monotonic() + 5
    while not collector.store.requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    collector.stop()
    client.join(timeout=5)  # half the client's own timeout: only the collector letting go ends it
    assert not client.is_alive()
    assert isinstance(outcome[0], requests.ConnectionError)


def test_wait_for_returns_once_enough_rows_are_stored(collector: Collector) -> None:
    assert collector.wait_for("events", 1, timeout=0.1) is False
    sender = threading.Timer(0.1, lambda: post(collector.notify_url, "events", event_payload()))
    sender.start()
    assert collector.wait_for("events", 1, timeout=5) is True
    sender.join()


def test_the_store_can_be_reopened_after_stop(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with Collector(path) as collector:
        assert post(collector.sessions_url, "sessions", session_payload("s-9")).ok
    with Store(path) as store:
        assert [s.session_id for s in store.sessions()] == ["s-9"]


def test_keep_alive_requests_are_all_answered_on_one_connection(collector: ScriptedCollector) -> None:
    body = encode(event_payload())
    headers = headers_for("events", body)
    with requests.Session() as http:
        for _ in range(50):
            assert post(collector.notify_url, "events", body, headers=headers, http=http).ok
    assert collector.connection_count == 1
    assert collector.store.count("events") == 50


def test_a_chunked_body_is_read(collector: Collector) -> None:
    body = encode(session_payload("s-chunked"))
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    try:
        connection.request(
            "POST",
            "/sessions",
            body=iter([body[:10], body[10:]]),
            headers=headers_for("sessions", body),
            encode_chunked=True,
        )
        assert connection.getresponse().status == 202
    finally:
        connection.close()
    assert [s.session_id for s in collector.store.sessions()] == ["s-chunked"]
