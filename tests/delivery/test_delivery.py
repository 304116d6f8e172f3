"""Delivery in this process, through its public methods: the retry policy, and the sender
against the real collector with a real outbox."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.cli import main
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.delivery.delivery import Delivery
from bugsnag_ipython.delivery.outbox import Outbox
from bugsnag_ipython.delivery.payload import MAX_AGE_SECONDS, Outcome, Payload, RetryPolicy, refusal
from bugsnag_ipython.delivery.transport import HttpTransport, NullTransport, retry_after
from bugsnag_ipython.report.payloads import encode
from tests.payloads import API_KEY
from tests.stored import payload_file, stored_payloads
from tests.waits import eventually

FAST = RetryPolicy(base=0.05, maximum=0.4)


def event(collector: Any, n: int = 0, *, pad: int = 0, created_at: float | None = None) -> Payload:
    payload = {
        "apiKey": API_KEY,
        "payloadVersion": "4.0",
        "notifier": {"name": "Bugsnag IPython", "version": "0", "url": "https://example.com"},
        "events": [{
            "exceptions": [{"errorClass": "ValueError", "message": f"n={n}", "stacktrace": []}],
            "severity": "warning",
            "severityReason": {"type": "handledException"},
            "unhandled": False,
            "app": {},
            "device": {},
            "metaData": {"pad": {"x": "x" * pad}},
        }],
    }
    body = encode(payload)  # as the notifier encodes its payloads
    return Payload("event", collector.notify_url, API_KEY, body, created_at or time.time())


@pytest.fixture
def delivery(tmp_path: Path) -> Iterator[Delivery]:
    made = Delivery(policy=FAST)
    made.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    yield made
    made.close(0)


# -- the policy ------------------------------------------------------------------------------


def test_the_retry_delay_doubles_with_jitter_up_to_the_maximum() -> None:
    policy = RetryPolicy(base=2, maximum=10)
    delays = [round(policy.delay(failures, 0.999), 1) for failures in range(1, 6)]
    assert delays == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.delay(1, 0.0) == 1.0  # jitter spreads between half and the whole delay


def wait_for_failed_attempts(delivery: Delivery, count: int = 1) -> None:
    """Until the sender has tried and failed `count` times."""
    deadline = time.monotonic() + 5
    while delivery.stats.retried < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert delivery.stats.retried >= count, f"the sender made no {count} failed attempts within 5 s"


def test_a_success_resets_the_backoff(delivery: Delivery, collector: Any) -> None:
    collector.go_down()
    delivery.submit(event(collector, 1))
    wait_for_failed_attempts(delivery, 4)  # the next wait is at least 0.05 * 2**3 / 2 s
    collector.come_back()
    assert delivery.flush(5) is True
    collector.go_down()
    delivery.submit(event(collector, 2))
    wait_for_failed_attempts(delivery, 5)
    assert (delivery.retry_in() or 0) <= 0.05  # the first failure's wait again
    collector.come_back()
    assert delivery.flush(5) is True


def test_a_flush_hurries_a_retry_but_never_before_a_retry_after(tmp_path: Path, collector: Any) -> None:
    delivery = Delivery(policy=RetryPolicy(base=60, maximum=60))
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    collector.script("notify", 503)
    delivery.submit(event(collector, 1))
    wait_for_failed_attempts(delivery)
    assert delivery.flush(5) is True  # not a minute later: at once
    collector.script("notify", (503, {"Retry-After": "2"}))
    delivery.submit(event(collector, 2))
    wait_for_failed_attempts(delivery, 2)
    assert delivery.flush(0.5) is False  # the server asked for two seconds
    assert 1 <= (delivery.retry_in() or 0) <= 2
    assert delivery.flush(5) is True
    assert collector.store.count("events") == 2
    delivery.close(0)


def test_outcomes_follow_the_protocol_table() -> None:
    assert Outcome(202).delivered
    for status in (400, 401, 403, 404, 413, 422):
        assert Outcome(status).undeliverable
    for retryable in (408, 429, 500, 503, None):
        assert Outcome(retryable).retryable
    assert refusal(401)[1].startswith("BugSnag rejected the API key")


def test_retry_after_takes_seconds_or_a_date() -> None:
    assert retry_after({"Retry-After": "7"}) == 7
    assert 28 <= (retry_after({"Retry-After": formatdate(time.time() + 30, usegmt=True)}) or 0) <= 30
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None


def test_retry_knobs_come_from_the_environment() -> None:
    policy = RetryPolicy.from_environment(
        {"BUGSNAG_RETRY_BASE_SECONDS": "0.01", "BUGSNAG_RETRY_MAX_SECONDS": "0.1"}
    )
    assert (policy.base, policy.maximum) == (0.01, 0.1)
    assert RetryPolicy.from_environment({"BUGSNAG_RETRY_BASE_SECONDS": "x"}) == RetryPolicy()


# -- the worker, against the real collector ---------------------------------------------


def test_one_backoff_per_endpoint_not_one_per_payload(delivery: Delivery, collector: Any) -> None:
    collector.go_down()
    for n in range(100):
        delivery.submit(event(collector, n))
    time.sleep(1.0)
    assert delivery.queued == delivery.stored == 100
    assert delivery.stats.retried <= 8  # a handful of attempts, each a probe for all hundred
    collector.come_back()
    assert delivery.flush(10) is True
    assert collector.store.count("events") == 100


def test_past_the_memory_budget_bodies_are_read_back_from_disk(tmp_path: Path, collector: Any) -> None:
    delivery = Delivery(policy=RetryPolicy(base=60, maximum=60), memory_budget=20_000)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    collector.go_down()
    delivery.submit(event(collector, -1))
    # The outbox is open, requests imported, and the sender waits a minute before its next try.
    wait_for_failed_attempts(delivery)
    tracemalloc.start()
    try:
        for n in range(100):
            delivery.submit(event(collector, n, pad=20_000))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 200_000  # of two megabytes of bodies, about the budget's worth kept
    collector.come_back()
    assert delivery.flush(10) is True
    assert sorted(e.message for e in collector.store.events()) == sorted(f"n={n}" for n in range(-1, 100))


def test_close_with_a_hanging_endpoint_gives_up_and_keeps_the_payload(
    delivery: Delivery, collector: Any, tmp_path: Path
) -> None:
    collector.hang()
    delivery.submit(event(collector))
    assert delivery.close(0.5) is False
    assert len(stored_payloads(tmp_path / "p")) == 1
    collector.unhang()


def test_without_a_usable_outbox_payloads_are_still_sent_from_memory(
    tmp_path: Path, collector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    delivery = Delivery(policy=FAST)
    delivery.reconfigure(Configuration(persistence_directory=str(blocker / "p")))
    with caplog.at_level(logging.WARNING, logger="bugsnag_ipython"):
        delivery.submit(event(collector))
        assert delivery.flush(5) is True
    assert collector.store.count("events") == 1
    assert "kept in memory only" in caplog.text


def stored_soon(directory: Path, count: int, seconds: float = 5.0) -> bool:
    """Wait until the outbox in `directory` holds `count` payloads."""
    deadline = time.monotonic() + seconds
    while len(stored_payloads(directory)) != count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_reconfiguring_the_directory_stores_new_payloads_there(
    delivery: Delivery, collector: Any, tmp_path: Path
) -> None:
    collector.go_down()
    delivery.submit(event(collector, 1))
    assert stored_soon(tmp_path / "p", 1)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "q")))
    delivery.submit(event(collector, 2))
    assert stored_soon(tmp_path / "q", 1)
    assert len(stored_payloads(tmp_path / "p")) == 1
    collector.come_back()
    assert delivery.flush(10) is True
    assert collector.store.count("events") == 2


def test_a_stored_payload_older_than_60_days_is_dropped_not_sent(tmp_path: Path, collector: Any) -> None:
    old = Outbox(tmp_path / "p").open()
    old.store(event(collector, created_at=time.time() - MAX_AGE_SECONDS - 3600))
    old.close()
    delivery = Delivery(policy=FAST)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    assert delivery.drain(5) is True
    assert delivery.stats.dropped == {"older than 60 days": 1}
    assert collector.store.count("events") == 0


def test_an_older_versions_payload_files_are_delivered(tmp_path: Path, collector: Any) -> None:
    for n in range(3):
        payload_file(tmp_path / "p", event(collector, n))
    delivery = Delivery(policy=FAST)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    assert delivery.drain(5) is True
    assert sorted(e.message for e in collector.store.events()) == ["n=0", "n=1", "n=2"]
    assert eventually(lambda: stored_payloads(tmp_path / "p") == [])
    assert not list((tmp_path / "p" / "outbox").glob("*.payload"))


def test_a_forked_child_does_not_deadlock_on_a_lock_held_at_fork(delivery: Delivery, collector: Any) -> None:
    stop = threading.Event()

    def submitting() -> None:  # holds the delivery's locks often, and at some fork below
        while not stop.is_set():
            delivery.submit(event(collector))

    busy = threading.Thread(target=submitting, daemon=True)
    busy.start()
    try:
        for _ in range(5):
            pid = os.fork()
            if pid == 0:  # the child: the submitting thread does not exist here
                delivery.submit(event(collector, 1))
                os._exit(0 if delivery.flush(5) and delivery.stats.delivered >= 1 else 1)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:  # status holds the child's exit
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, 9)
                raise AssertionError("the forked child hung")
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        busy.join(5)


def test_a_null_transport_takes_ten_thousand_events(tmp_path: Path, collector: Any) -> None:
    delivery = Delivery(NullTransport, policy=FAST)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    payload = event(collector, pad=2000)
    for _ in range(10_000):
        delivery.submit(payload)
    assert delivery.flush(30) is True
    assert delivery.stats.delivered == 10_000


# -- the outbox command ------------------------------------------------------------------


def test_the_outbox_command_lists_and_flushes(
    tmp_path: Path, collector: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = Outbox(tmp_path / "p").open()
    for n in range(3):
        stored.store(event(collector, n))
    stored.close()
    assert main(["outbox", "--dir", str(tmp_path / "p")]) == 0
    listing = capsys.readouterr().out
    assert "3 payload(s)" in listing and f"{collector.notify_url}  3 event(s)" in listing
    assert main(["outbox", "flush", "--dir", str(tmp_path / "p"), "--timeout", "10"]) == 0
    assert "Delivered 3; 0 left." in capsys.readouterr().out
    assert collector.store.count("events") == 3
    collector.go_down()
    again = Outbox(tmp_path / "p").open()
    again.store(event(collector, 9))
    again.close()
    assert main(["outbox", "flush", "--dir", str(tmp_path / "p"), "--timeout", "0.5"]) == 1
    assert "could not connect" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user's needs root")
def test_the_outbox_command_reads_nothing_in_another_users_directory(
    tmp_path: Path, collector: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = Outbox(tmp_path / "p").open()
    stored.store(event(collector, 1))
    stored.close()
    for path in [tmp_path / "p", *(tmp_path / "p").rglob("*")]:
        os.chown(path, 65534, 65534)
    assert main(["outbox", "--dir", str(tmp_path / "p")]) == 1
    said = capsys.readouterr()
    assert "payload" not in said.out
    assert said.err.startswith(f"The persistence directory {tmp_path / 'p'} belongs to another user")


# -- several events in one request ---------------------------------------------------------


def test_events_waiting_together_go_in_one_request_each_once(delivery: Delivery, collector: Any) -> None:
    collector.go_down()
    for n in range(30):
        delivery.submit(event(collector, n))
    wait_for_failed_attempts(delivery)
    collector.come_back()
    assert delivery.flush(10) is True
    requests = [r for r in collector.store.requests("events") if r.status == 202]
    assert len(requests) < 5  # the events that waited went together
    assert sum(len(json.loads(r.body)["events"]) for r in requests) == 30
    assert sorted(e.message for e in collector.store.events()) == sorted(f"n={n}" for n in range(30))
    assert delivery.stats.delivered == 30


def test_a_refused_batch_is_sent_again_event_by_event(delivery: Delivery, collector: Any) -> None:
    collector.go_down()
    for n in range(5):
        delivery.submit(event(collector, n))
    wait_for_failed_attempts(delivery)
    collector.script("notify", 400)  # say, one event in it was malformed
    collector.come_back()
    assert delivery.flush(10) is True
    statuses = [(r.status, len(json.loads(r.body)["events"])) for r in collector.store.requests("events")]
    assert statuses[0] == (400, 5)
    assert statuses[1:] == [(202, 1)] * 5
    assert delivery.stats.delivered == 5 and not delivery.stats.dropped


def test_payloads_for_another_key_are_not_joined(delivery: Delivery, collector: Any) -> None:
    collector.go_down()
    other_key = "f" * 32
    delivery.submit(event(collector, 1))
    body = event(collector, 2).body.replace(API_KEY.encode(), other_key.encode())
    delivery.submit(Payload("event", collector.notify_url, other_key, body, time.time()))
    delivery.submit(event(collector, 3))
    wait_for_failed_attempts(delivery)
    collector.come_back()
    assert delivery.flush(10) is True
    sent = [(r.header("Bugsnag-Api-Key"), len(json.loads(r.body)["events"]))
            for r in collector.store.requests("events")]
    assert sorted(sent) == sorted([(API_KEY, 2), (other_key, 1)])


class FirstSendFails:
    """Holds its first send until `gate` is set, and fails it; sends the rest to the collector."""

    gate = threading.Event()
    held = threading.Event()
    flying = 0  # events in the send held

    def __init__(self) -> None:
        self._http = HttpTransport()
        self._first = True

    def send(self, payload: Payload) -> Outcome:
        if self._first:
            self._first = False
            FirstSendFails.flying = len(json.loads(payload.body)["events"])
            self.held.set()
            self.gate.wait(10)
            return Outcome(503)
        return self._http.send(payload)

    def close(self) -> None:
        self._http.close()


def test_the_cap_never_drops_a_newer_payload_in_place_of_one_in_flight(
    tmp_path: Path, collector: Any
) -> None:
    delivery = Delivery(FirstSendFails, policy=FAST)
    config = Configuration(persistence_directory=str(tmp_path / "p"), max_stored_events=2)
    delivery.reconfigure(config)
    FirstSendFails.gate.clear()
    FirstSendFails.held.clear()
    for n in range(2):
        delivery.submit(event(collector, n))
    assert FirstSendFails.held.wait(5)
    for n in range(2, 5):  # one or both of the first two are in flight
        delivery.submit(event(collector, n))
    # Of five, the two newest not in flight are kept: the cap counts those not in flight.
    assert delivery.stats.dropped == {"over the stored cap": 3 - FirstSendFails.flying}
    FirstSendFails.gate.set()  # that send failed: now the first two are the oldest, and go
    assert delivery.flush(10) is True
    assert sorted(e.message for e in collector.store.events()) == ["n=3", "n=4"]  # the newest two
    assert delivery.stats.dropped == {"over the stored cap": 3}
    delivery.close(0)


def test_a_journal_past_its_limit_gives_way_to_a_new_one_and_everything_arrives_once(
    tmp_path: Path, collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bugsnag_ipython.delivery import outbox

    monkeypatch.setattr(outbox, "LIMIT", 4000)
    collector.go_down()
    delivery = Delivery(policy=FAST)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path)))
    for n in range(200):
        delivery.submit(event(collector, n))
    journals = tmp_path / "outbox"
    assert eventually(lambda: len(stored_payloads(tmp_path)) == 200)
    assert len(list(journals.glob("*.journal"))) > 10
    collector.come_back()
    assert delivery.flush(20) is True
    assert delivery.stats.delivered == 200
    messages = sorted(event.message for event in collector.store.events())
    assert messages == sorted(f"n={n}" for n in range(200))
    assert eventually(lambda: stored_payloads(tmp_path) == [])  # done right after delivery
    assert len(list(journals.glob("*.journal"))) == 1  # the full ones are gone
    delivery.close(0)
