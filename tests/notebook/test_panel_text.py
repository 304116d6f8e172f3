"""What the panel says, built from a client without widgets or a kernel."""

from __future__ import annotations

import math
import tempfile
import threading
from collections.abc import Callable

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.delivery.delivery import Delivery
from bugsnag_ipython.delivery.payload import Outcome, Payload, RetryPolicy
from bugsnag_ipython.notebook.status import (
    FlushProgress,
    ago,
    countdown_text,
    panel_view,
    status_html,
    status_text,
)
from tests.payloads import OTHER_KEY as API_KEY

NOW = 1_796_000_000.0  # November 2026: payloads this old are not aged out


class Outage:
    """A transport whose endpoint is down until `up` is set, then accepts everything."""

    def __init__(self) -> None:
        self.up = False

    def send(self, payload: Payload) -> Outcome:
        return Outcome(202) if self.up else Outcome(503)

    def close(self) -> None:
        pass


class Refusing:
    """A transport whose endpoint refuses everything with one status (400: as invalid)."""

    def __init__(self, status: int = 400) -> None:
        self.status = status

    def send(self, payload: Payload) -> Outcome:
        return Outcome(self.status)

    def close(self) -> None:
        pass


def make_client(
    transport: object = Refusing, delivery: Delivery | None = None, **options: object
) -> Client:
    clock = [NOW]
    outbox = tempfile.TemporaryDirectory(prefix="bugsnag-panel-test-")
    config = Configuration().replace(persistence_directory=outbox.name, **options)
    delivery = delivery or Delivery(transport)  # type: ignore[arg-type]
    client = Client(config, delivery=delivery, wall_clock=lambda: clock[0])
    client.outbox_directory = outbox  # type: ignore[attr-defined]  # removed with the client
    return client


def rows(view_rows: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(view_rows)


def test_no_session_offers_only_a_new_one() -> None:
    client = make_client()

    view = panel_view(client, None, wall_clock=NOW, monotonic=0.0)

    assert view.state == "none"
    assert (view.can_start, view.can_pause, view.can_resume, view.can_flush) == (True, False, False, False)
    assert rows(view.session)["This kernel"] == "0 sessions started"


def test_active_then_paused_session() -> None:
    client = make_client(api_key=API_KEY, app_version="1.2")
    client.launch(in_background=True)
    client.notify(ValueError("x"))
    client.notify(ValueError("y"), unhandled=True)

    view = panel_view(client, None, wall_clock=NOW + 90, monotonic=0.0)
    assert view.state == "active" and view.can_pause and not view.can_resume
    assert rows(view.session)["Errors"] == "1 handled, 1 unhandled in this session"
    assert rows(view.session)["Started"].endswith("(1 min ago)")
    assert rows(view.session)["Stability"].startswith("0.0% (0 of 1")
    settings = rows(view.settings)
    assert API_KEY not in str(view) and settings["API key"] == "…cdef"
    assert settings["Release"] == "stage production, version 1.2"

    client.pause_session()
    view = panel_view(client, None, wall_clock=NOW + 90, monotonic=0.0)
    assert view.state == "paused" and view.can_resume and not view.can_pause


def test_dropped_payloads_show_their_reason() -> None:
    client = make_client(api_key=API_KEY)
    client.launch(in_background=True)
    client.notify(ValueError("x"))
    assert client.flush(5)

    delivery = rows(panel_view(client, None, wall_clock=NOW, monotonic=0.0).delivery)

    assert delivery["Dropped"] == "2 (2 payload refused (HTTP 400))"
    assert delivery["Last error"] == "BugSnag refused a payload as invalid (HTTP 400); it is dropped."
    assert delivery["Waiting"] == "0"


def test_an_outage_then_a_recovery_counts_each_payload_once_and_clears_the_error() -> None:
    endpoint = Outage()
    client = make_client(lambda: endpoint, api_key=API_KEY)
    client.launch(in_background=True)
    client.notify(ValueError("x"))
    assert not client.flush(0.5)

    view = panel_view(client, None, wall_clock=NOW, monotonic=0.0)
    delivery = rows(view.delivery)
    # Two payloads wait (the launch session and the event), each counted once, kept on disk.
    assert delivery["Waiting"].startswith("2 (on disk), next try in ")
    assert delivery["Last error"].startswith("Sending to ") and "HTTP 503" in delivery["Last error"]
    assert view.delivery_state == "failing" and view.title.endswith(" · delivery failing")
    assert view.can_flush
    assert "Delivery: 0 delivered, 2 waiting (on disk)" in status_text(client)

    endpoint.up = True
    assert client.flush(5)

    view = panel_view(client, None, wall_clock=NOW, monotonic=0.0)
    delivery = rows(view.delivery)
    assert delivery["Delivered"] == "2" and delivery["Waiting"] == "0"
    # The row stays, so that the panel keeps its size; the status text drops the line.
    assert delivery["Last error"] == "none" and "Last error" not in status_text(client)
    assert view.delivery_state == "ok" and "delivery" not in view.title
    assert not view.can_flush


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_for_failures(delivery: Delivery, count: int) -> Callable[[], None]:
    """Returns a wait that ends once `count` tries have failed (and were kept to retry)."""
    failed = threading.Event()

    def check() -> None:
        if delivery.stats.retried >= count:
            failed.set()

    delivery.listeners.append(check)
    return lambda: None if failed.wait(10) else pytest.fail("no failed try within 10 s")


def test_while_an_endpoint_fails_the_countdown_to_the_next_try_counts_down() -> None:
    clock = Clock()
    endpoint = Outage()
    delivery = Delivery(lambda: endpoint, policy=RetryPolicy(base=40.0, maximum=40.0), monotonic=clock)
    waited = wait_for_failures(delivery, 2)  # the launch session's endpoint and the event's
    client = make_client(delivery=delivery, api_key=API_KEY)
    client.launch(in_background=True)
    client.notify(ValueError("x"))
    waited()

    def shown() -> tuple[str, float]:
        view = panel_view(client, None, wall_clock=NOW, monotonic=0.0)
        assert view.delivery_state == "failing" and view.countdown is not None
        waiting = rows(view.delivery)["Waiting"]  # "2 (on disk), next try in 28s"
        assert waiting.startswith("2 (")
        return waiting.rpartition("), ")[2], view.countdown

    said, countdown = shown()
    assert 20.0 <= countdown < 40.0  # the policy's wait, with its jitter
    assert said == f"next try in {math.ceil(countdown)}s"
    clock.now += 1.0
    assert shown() == (f"next try in {math.ceil(countdown - 1.0)}s", countdown - 1.0)
    clock.now += countdown - 1.0
    assert shown()[0] == "trying now"  # due: never "in 0s"
    # The error says what happened; the chosen wait it named then is the countdown's to show.
    last_error = rows(panel_view(client, None, wall_clock=NOW, monotonic=0.0).delivery)["Last error"]
    assert last_error.endswith("failed (HTTP 503); kept.")


def test_countdown_texts() -> None:
    assert [countdown_text(s) for s in (0, 0.2, 4.0, 4.01, 59.5, 61, 300)] == [
        "trying now",
        "next try in 1s",
        "next try in 4s",
        "next try in 5s",
        "next try in 1 min 00s",
        "next try in 1 min 01s",
        "next try in 5 min 00s",
    ]


@pytest.mark.parametrize(("status", "said"), [(401, "API key rejected"), (404, "endpoint not found")])
def test_a_refusal_that_drops_everything_turns_the_badge_red(status: int, said: str) -> None:
    client = make_client(lambda: Refusing(status), api_key=API_KEY)
    client.launch(in_background=True)
    assert client.flush(5)

    view = panel_view(client, None, wall_clock=NOW, monotonic=0.0)

    assert view.delivery_state == "stopped" and view.title.endswith(f" · not sending: {said}")
    assert view.countdown is None


def test_a_refused_payload_alone_leaves_the_badge_alone() -> None:
    client = make_client(api_key=API_KEY)  # 400: that payload is dropped, the next may pass
    client.launch(in_background=True)
    assert client.flush(5)
    assert panel_view(client, None, wall_clock=NOW, monotonic=0.0).delivery_state == "ok"


def test_errors_outside_a_session_are_counted_and_shown() -> None:
    client = make_client(api_key=API_KEY)
    client.notify(ValueError("before any session"))
    client.launch(in_background=True)
    client.pause_session()
    client.notify(ValueError("while paused"), unhandled=True)

    session = rows(panel_view(client, None, wall_clock=NOW, monotonic=0.0).session)

    assert session["Errors"] == "0 handled, 0 unhandled in this session"
    assert session["Outside a session"] == "1 handled, 1 unhandled (reported, counted in no session)"
    assert "Outside a session: 1 handled, 1 unhandled" in status_text(client)


def test_without_a_key_payloads_are_held_and_said_so() -> None:
    client = make_client()
    client.launch(in_background=True)
    client.send_launch_session()  # what a moment after the launch does in the background

    view = panel_view(client, None, wall_clock=NOW, monotonic=0.0)

    assert rows(view.delivery)["Held"].startswith("1 in memory, not sent: no API key is set")
    assert view.delivery_state == "stopped" and view.title.endswith(" · not sending: no API key")
    assert "nothing is sent" in rows(view.settings)["API key"]
    assert not view.can_flush
    held = [line for line in status_text(client).splitlines() if line.startswith("Held:")]
    assert held == [
        "Held: 1 payload kept in memory, not sent: no API key is set; run %bugsnag_key to enter "
        "it (it is kept for later kernels, never shown), or set BUGSNAG_API_KEY and run "
        "%reload_ext bugsnag_ipython (they are lost if the kernel exits first)."
    ]


def test_flush_progress_and_outcome() -> None:
    client = make_client()
    running = FlushProgress(started=10.0)
    assert panel_view(client, running, wall_clock=0, monotonic=12.0).flush == "Flushing… 0 waiting (2s)"
    done = FlushProgress(started=10.0, running=False, delivered_all=True, seconds=0.4)
    assert "everything was delivered" in panel_view(client, done, wall_clock=0, monotonic=12.0).flush
    gave_up = FlushProgress(started=10.0, running=False, seconds=5.0)
    # Nothing waits any more: "gave up, 0 still waiting" would describe a past that is gone.
    assert panel_view(client, gave_up, wall_clock=0, monotonic=12.0).flush == ""


def test_unloaded_extension_disables_everything() -> None:
    view = panel_view(None, None, wall_clock=0, monotonic=0)

    assert view.state == "unloaded"
    assert not (view.can_start or view.can_pause or view.can_resume or view.can_flush)
    assert "%load_ext bugsnag_ipython" in status_text(None)


def test_the_html_fallback_is_the_status_text_as_a_table() -> None:
    client = make_client(api_key=API_KEY)
    client.launch(in_background=True)

    text = status_text(client)
    page = status_html(client)

    assert "Session: active" in text and API_KEY not in text + page
    assert "<th style='text-align:left;padding-right:1em'>Session</th>" in page


def test_short_ago_is_coarse_after_a_minute() -> None:
    assert [ago(s, coarse=True) for s in (0, 59, 60, 3599, 3600 * 2 + 120)] == [
        "0s ago", "59s ago", "1 min ago", "59 min ago", "2h 2min ago"
    ]
