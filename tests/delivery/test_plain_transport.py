"""The watcher's transport (the standard library only) against the real collector: what it sends
is what the package's HTTP transport sends, the credentials of an endpoint URL go as a Basic
Authorization header, and a failed send is an outcome, never an exception."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from bugsnag_ipython.delivery.payload import Payload
from bugsnag_ipython.delivery.transport import PlainTransport
from bugsnag_ipython.report import environment, payloads
from tests.payloads import API_KEY


def an_event() -> bytes:
    body = payloads.event(exceptions=[{"errorClass": "KernelDied", "message": "killed", "type": "python",
                                       "stacktrace": []}],
                          unhandled=True, severity="error", severity_reason="unhandledException",
                          app={"type": "jupyter", "releaseStage": "production"},
                          device={"time": payloads.iso8601(time.time())}, user={}, context=None,
                          breadcrumbs=[], metadata={})
    return payloads.encode(payloads.event_payload(API_KEY, environment.NOTIFIER, [body]))


def test_an_event_reaches_the_collector_with_the_headers_bugsnag_needs(collector: Any) -> None:
    sent = an_event()
    outcome = PlainTransport().send(Payload("event", collector.notify_url, API_KEY, sent, time.time()))
    assert outcome.delivered, outcome
    [request] = collector.store.requests("events")
    assert request.status == 202 and json.loads(request.body) == json.loads(sent)
    assert request.header("Bugsnag-Api-Key") == API_KEY
    assert request.header("Bugsnag-Payload-Version") == payloads.EVENT_PAYLOAD_VERSION
    assert request.header("Bugsnag-Integrity") is not None and request.header("Bugsnag-Sent-At")


def test_an_endpoint_with_credentials_gets_them_as_basic_authorization(collector: Any) -> None:
    url = collector.notify_url.replace("://", "://ops:p%40ss@")
    assert PlainTransport().send(Payload("event", url, API_KEY, an_event(), time.time())).delivered
    [request] = collector.store.requests("events")
    assert request.header("Authorization") == "Basic " + base64.b64encode(b"ops:p@ss").decode()


def test_an_endpoint_that_is_down_is_an_outcome_to_retry() -> None:
    down = Payload("event", "http://127.0.0.1:9/", API_KEY, an_event(), time.time())
    outcome = PlainTransport().send(down)
    assert outcome.status is None and outcome.retryable and outcome.error
