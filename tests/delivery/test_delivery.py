"""Delivery in this process: the retry policy on an injected clock, and the worker against the
real collector with a real outbox."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.cli import main
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.delivery.outbox import Outbox
from bugsnag_ipython.delivery.pending import Pending, Record
from bugsnag_ipython.delivery.retry import MAX_AGE_SECONDS, Backoff, RetryPolicy, refusal
from bugsnag_ipython.delivery.sender import Delivery
from bugsnag_ipython.delivery.transport import Envelope, Kind, NullTransport, Outcome, retry_after
from bugsnag_ipython.report.payloads import encode
from tests.payloads import API_KEY
from tests.stored import stored_payloads

FAST = RetryPolicy(base=0.05, maximum=0.4)


def event(collector: Any, n: int = 0, *, pad: int = 0, created_at: float | None = None) -> Envelope:
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
    return Envelope("event", collector.notify_url, API_KEY, body, created_at or time.time())


@pytest.fixture
def delivery(tmp_path: Path) -> Iterator[Delivery]:
    made = Delivery(policy=FAST)
    made.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    yield made
    made.close(0)


# -- the policy, on an injected clock -------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_maximum_and_resets_on_success() -> None:
    now = [100.0]
    backoff = Backoff(RetryPolicy(base=2, maximum=10), lambda: now[0], jitter=lambda: 0.999)
    assert [round(backoff.failed(), 1) for _ in range(5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert not backoff.ready()
    backoff.succeeded()
    assert backoff.ready() and backoff.failures == 0
    low = Backoff(RetryPolicy(base=2, maximum=10), lambda: now[0], jitter=lambda: 0.0)
    assert low.failed() == 1.0  # jitter spreads between half and the whole delay


def test_a_flush_hurries_a_backoff_but_never_past_a_retry_after() -> None:
    now = [0.0]
    backoff = Backoff(RetryPolicy(base=60, maximum=60), lambda: now[0])
    backoff.failed()
    backoff.hurry()
    assert backoff.ready()
    backoff.failed(retry_after=5)
    backoff.hurry()
    assert backoff.wait() == 5
    now[0] = 5
    assert backoff.ready()


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
    delivery = Delivery(policy=FAST, memory_budget=20_000)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    collector.go_down()
    for n in range(100):
        delivery.submit(event(collector, n, pad=2000))
    assert delivery.pending.memory <= 20_000 + 3000
    collector.come_back()
    assert delivery.flush(10) is True
    assert sorted(e.message for e in collector.store.events()) == sorted(f"n={n}" for n in range(100))


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
    old.write(event(collector, created_at=time.time() - MAX_AGE_SECONDS - 3600))
    old.close()
    delivery = Delivery(policy=FAST)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    assert delivery.drain(5) is True
    assert delivery.stats.dropped == {"older than 60 days": 1}
    assert collector.store.count("events") == 0


def test_a_forked_child_does_not_deadlock_on_a_lock_held_at_fork(delivery: Delivery) -> None:
    delivery.submit(Envelope("event", "http://127.0.0.1:9/notify", API_KEY, b"{}", time.time()))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with delivery._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    held.wait(5)
    pid = os.fork()
    if pid == 0:  # the child: the holder thread does not exist here
        delivery._transport_factory = NullTransport
        delivery.submit(Envelope("event", "http://127.0.0.1:9/notify", API_KEY, b"{}", time.time()))
        os._exit(0 if delivery.flush(5) and delivery.stats.delivered == 1 else 1)
    release.set()
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


def test_a_null_transport_takes_ten_thousand_events(tmp_path: Path) -> None:
    delivery = Delivery(NullTransport, policy=FAST)
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path / "p")))
    envelope = Envelope("event", "http://127.0.0.1:9/notify", API_KEY, b"{}" * 1000, time.time())
    for _ in range(10_000):
        delivery.submit(envelope)
    assert delivery.flush(30) is True
    assert delivery.stats.delivered == 10_000


# -- the outbox command ------------------------------------------------------------------


def test_the_outbox_command_lists_and_flushes(
    tmp_path: Path, collector: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = Outbox(tmp_path / "p").open()
    for n in range(3):
        stored.write(event(collector, n))
    stored.close()
    assert main(["outbox", "--dir", str(tmp_path / "p")]) == 0
    listing = capsys.readouterr().out
    assert "3 payload(s)" in listing and f"{collector.notify_url}  3 event(s)" in listing
    assert main(["outbox", "flush", "--dir", str(tmp_path / "p"), "--timeout", "10"]) == 0
    assert "Delivered 3; 0 left." in capsys.readouterr().out
    assert collector.store.count("events") == 3
    collector.go_down()
    again = Outbox(tmp_path / "p").open()
    again.write(event(collector, 9))
    again.close()
    assert main(["outbox", "flush", "--dir", str(tmp_path / "p"), "--timeout", "0.5"]) == 1
    assert "could not connect" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user's needs root")
def test_the_outbox_command_reads_nothing_in_another_users_directory(
    tmp_path: Path, collector: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = Outbox(tmp_path / "p").open()
    stored.write(event(collector, 1))
    stored.close()
    for path in [tmp_path / "p", *(tmp_path / "p").rglob("*")]:
        os.chown(path, 65534, 65534)
    assert main(["outbox", "--dir", str(tmp_path / "p")]) == 1
    said = capsys.readouterr()
    assert "payload" not in said.out
    assert said.err.startswith(f"The persistence directory {tmp_path / 'p'} belongs to another user")


# -- several events in one request ---------------------------------------------------------


def wait_for_a_failed_attempt(delivery: Delivery) -> None:
    """Until the sender has tried and failed: after that, everything submitted goes together."""
    deadline = time.monotonic() + 5
    while delivery.stats.retried == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert delivery.stats.retried > 0, "the sender made no failed attempt within 5 s"


def test_events_waiting_together_go_in_one_request_each_once(delivery: Delivery, collector: Any) -> None:
    collector.go_down()
    for n in range(30):
        delivery.submit(event(collector, n))
    wait_for_a_failed_attempt(delivery)
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
    wait_for_a_failed_attempt(delivery)
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
    delivery.submit(Envelope("event", collector.notify_url, other_key, body, time.time()))
    delivery.submit(event(collector, 3))
    wait_for_a_failed_attempt(delivery)
    collector.come_back()
    assert delivery.flush(10) is True
    sent = [(r.header("Bugsnag-Api-Key"), len(json.loads(r.body)["events"]))
            for r in collector.store.requests("events")]
    assert sorted(sent) == sorted([(API_KEY, 2), (other_key, 1)])


def test_the_cap_never_drops_a_newer_record_in_place_of_one_in_flight() -> None:
    pending = Pending(FAST, time.monotonic)
    caps: dict[Kind, int] = {"session": 10, "event": 2}
    url = "http://127.0.0.1:9/notify"
    records = [Record(Envelope("event", url, API_KEY, b"{}", float(n)), own=True) for n in range(5)]
    for record in records[:2]:
        pending.add(record, caps)
    taken = pending.take(100, 10**6)
    assert taken is not None and [record for record, _ in taken[0]] == records[:2]
    dropped = [gone for record in records[2:] for gone in pending.add(record, caps)]
    assert dropped == records[2:3]  # the cap counts the records not in flight
    for record, _ in taken[0]:  # that send failed
        pending.put_back(record)
    assert pending.enforce_caps(caps) == records[:2]  # now they are the oldest: they go
    assert [record for record in records if not record.done] == records[3:]  # the newest two
