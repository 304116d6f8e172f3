"""Every session and event the test suite makes is one BugSnag accepts.

The collector's own rules (`bugsnag_ipython.collector.validation`) are applied to every payload
handed to delivery in the test process, and, for the payloads real kernels make, the
test collector's log is read when a test ends: a request it refused by those rules (not by a
script of the test) fails the test, whatever the test asserts itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bugsnag_ipython.collector.validation import check_request
from bugsnag_ipython.report import payloads
from tests.collector_support import HELD, SCRIPTED


def shape_problem(kind: str, body: bytes, api_key: str) -> str | None:
    """Why the collector would refuse this payload, or None when it accepts it."""
    session = kind == "session"
    version = payloads.SESSION_PAYLOAD_VERSION if session else payloads.EVENT_PAYLOAD_VERSION
    verdict = check_request(
        "sessions" if session else "events", payloads.headers(api_key, version, body, 0.0), body
    )
    return None if verdict.accepted else verdict.reason


def refused_by_validation(collector: Any) -> list[str]:
    """The requests a collector refused for their shape (statuses 400 and 401 it chose)."""
    return [
        f"{request.kind}: {request.reason}"
        for request in collector.store.requests()
        if request.status in (400, 401) and request.reason not in (SCRIPTED, HELD)
    ]


@pytest.fixture(autouse=True)
def _every_payload_a_client_makes_has_bugsnags_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """Checks what reaches `submit(payload)`, the one door into delivery: a real `Delivery`'s,
    and the recorder's that stands in for it."""
    from bugsnag_ipython.delivery.delivery import Delivery
    from bugsnag_ipython.delivery.payload import Payload
    from tests.fakes import Recorder

    problems: list[str] = []

    def checking(submit: Any) -> Any:
        def checked(self: Any, payload: Payload) -> None:
            problem = shape_problem(payload.kind, payload.body, payload.api_key)
            if problem is not None:
                problems.append(f"{payload.kind} handed to delivery: {problem}")
            submit(self, payload)

        return checked

    for door in (Delivery, Recorder):
        monkeypatch.setattr(door, "submit", checking(door.submit))
    yield
    assert not problems, problems


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sends_malformed: the test posts malformed payloads to the collector on purpose"
    )
