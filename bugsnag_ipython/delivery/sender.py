"""Delivery: every payload reaches its endpoint once, is kept on disk until it does, or is
dropped on purpose, counted and said (a 4xx other than 408 and 429; a cap reached).

Three parts:

- `submit()` runs on the thread that made the payload (a cell, a thread's excepthook) and
  never touches the network. It appends the payload to this kernel's journal itself (one
  write() to a file already open, about 5 microseconds, no fsync; see journal.py). That makes
  the payload durable before the cell that raised it has returned, so a kernel killed right
  after an error still leaves the error on disk. A writer thread would not be: each system
  call of a write releases the GIL, and a thread that wants it back while a cell computes
  waits a switch interval (5 ms) per call, so a writer falls seconds behind a loop of errors.
- The sender, one daemon thread, sends over one keep-alive connection: this process's own
  payloads first, oldest first, with one backoff per endpoint. The events that wait for one
  endpoint together go in one request (`Pending.take`, `payloads.join_events`).
- The keeper (keeper.py), with a second daemon thread, owns the outbox: the disk work that must
  neither delay a cell nor wait behind a send.

Threads start when first needed. A forked child starts afresh with threads of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import forkguard
from ..core.config import shown_host
from ..report import payloads
from ..report.trimming import MAX_PAYLOAD_BYTES
from .keeper import OutboxKeeper
from .pending import DeliveryStats, Pending, Record
from .retry import MAX_AGE_SECONDS, Backoff, RetryPolicy, refusal
from .transport import Envelope, HttpTransport, Kind, NullTransport, Outcome, Transport

if TYPE_CHECKING:
    from ..core.config import Configuration

__all__ = ["Delivery", "DeliveryStats", "Envelope", "Kind", "NullTransport", "Outcome", "Transport"]

log = logging.getLogger("bugsnag_ipython")
MEMORY_BUDGET = 16 * 1024 * 1024  # bodies kept in memory; past it they are read back from disk
CHILD_HOLD_SECONDS = 10.0  # a forked child's payloads wait this long for the parent (see below)
MAX_BATCH = 100  # events sent in one request, at most ...
MAX_BATCH_BYTES = MAX_PAYLOAD_BYTES  # ... and bytes: one payload's limit


class Delivery:
    """Outbox, sender and keeper for one process."""

    def __init__(
        self,
        transport_factory: Callable[[], Transport] = HttpTransport,
        *,
        policy: RetryPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        memory_budget: int = MEMORY_BUDGET,
    ) -> None:
        self._transport_factory = transport_factory
        self._policy = policy or RetryPolicy.from_environment()
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._memory_budget = memory_budget
        self._caps: dict[Kind, int] = {"session": 1000, "event": 10000}
        self.listeners: list[Callable[[], None]] = []
        self._start_afresh(directory=None)
        self._forked_child = False
        reference = weakref.ref(self)
        if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
            os.register_at_fork(
                after_in_child=lambda: _after_fork(reference, child=True),
                after_in_parent=lambda: _after_fork(reference, child=False),
            )

    def _start_afresh(self, directory: str | None) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self.pending = Pending(self._policy, self._monotonic)
        self.stats: DeliveryStats = self.pending.stats
        self._warned: set[str] = set()
        self._sender: threading.Thread | None = None
        self._keeper = OutboxKeeper(
            self.pending,
            self._wake,
            caps=lambda: self._caps,
            on_change=self._changed,
            monotonic=self._monotonic,
            wall_clock=self._wall_clock,
            memory_budget=self._memory_budget,
            directory=directory,
        )

    # -- what status and the panel read ---------------------------------------------------

    @property
    def queued(self) -> int:
        """Payloads this process still has to send (its own and adopted ones)."""
        return self.pending.count

    @property
    def stored(self) -> int:
        """Of those, how many are safe in the outbox on disk."""
        return self.pending.stored

    @property
    def outbox_directory(self) -> str | None:
        outbox = self._keeper.outbox
        return str(outbox.root) if outbox is not None else None

    @property
    def problem(self) -> str | None:
        """Why payloads are kept in memory only (no outbox), in one sentence; None if they are not."""
        return self._keeper.problem

    def retry_in(self) -> float | None:
        """Seconds, on the delivery's clock, until what waits is tried again: 0 while a send
        is under way or due, None when nothing waits."""
        with self._lock:
            if self.pending.in_flight:
                return 0.0
            return self.pending.next_wait()

    def counters(self) -> dict[str, Any]:
        """A consistent snapshot of the counters, for the status panel."""
        with self._lock:
            return {
                "delivered": self.stats.delivered,
                "queued": self.pending.count,
                "stored": self.pending.stored,
                "retried": self.stats.retried,
                "dropped": dict(self.stats.dropped),
                "last_error": self.stats.last_error,
            }

    # -- the client's calls ----------------------------------------------------------------

    def reconfigure(self, config: Configuration) -> None:
        """Take the outbox directory and the caps from the client's configuration."""
        with self._lock:
            self._caps = {"session": config.max_stored_sessions, "event": config.max_stored_events}
            removed = self.pending.enforce_caps(self._caps)
            self._keeper.move_to(config.persistence_directory)
        self._keeper.forget(removed)

    def submit(self, envelope: Envelope) -> None:
        """Store a payload and queue it for the sender; never waits on the network."""
        record = Record(envelope, own=True)
        with self._lock:
            self._ensure_threads_locked()
        stored = self._keeper.store_now(record)
        with self._wake:
            removed = self.pending.add(record, self._caps)
            if not stored:
                self._keeper.store_later(record)
            elif self.pending.memory > self._memory_budget:
                self.pending.spill(record)
            backoff = self.pending.endpoint(record.url).backoff
            if self._forked_child and stored and backoff.ready():
                backoff.hold(CHILD_HOLD_SECONDS)  # see _after_fork_in_child
            if not self.pending.in_flight and backoff.ready():
                # Woken for nothing, the sender would take the GIL from this (cell) thread.
                self._wake.notify_all()
        self._keeper.forget(removed)
        self._changed()

    def flush(self, timeout: float = 5.0) -> bool:
        """Retry now (but not before a Retry-After) and wait until none of this process's own
        payloads is left; True if none is. Adopted ones go on in the background."""
        self._wait(timeout, lambda _deadline: self.pending.own == 0)
        return self.pending.own == 0

    def close(self, timeout: float) -> bool:
        """The exit flush: at most `timeout` seconds; what is left stays on disk."""
        self._wait(timeout, self._nothing_to_wait_for)
        return self.pending.own == 0

    def drain(self, timeout: float) -> bool:
        """Adopt what the outbox holds and deliver everything (`bugsnag-ipython outbox flush`)."""
        started = self._monotonic()
        with self._lock:
            self._ensure_threads_locked()
        if not self._keeper.scanned.wait(max(0.0, timeout)):
            return False
        remaining = timeout - (self._monotonic() - started)
        self._wait(remaining, lambda _deadline: self.pending.count == 0)
        return self.pending.count == 0

    def _wait(self, timeout: float, done: Callable[[float], bool]) -> None:
        deadline = self._monotonic() + max(0.0, timeout)
        with self._wake:
            self.pending.hurry()
            self._wake.notify_all()
            while not done(deadline):
                remaining = deadline - self._monotonic()
                if remaining <= 0:
                    break
                self._wake.wait(remaining)

    def _nothing_to_wait_for(self, deadline: float) -> bool:
        # Leaving early is safe once every own payload is on disk and none could be sent
        # before the deadline: the next kernel delivers them.
        pending = self.pending
        return pending.own == 0 or (
            not pending.in_flight and pending.own_stored_and_waiting(deadline)
        )

    # -- the sender ------------------------------------------------------------------------

    def _ensure_threads_locked(self) -> None:
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(target=self._send_loop, name="bugsnag-sender", daemon=True)
            self._sender.start()
        self._keeper.start()

    def _send_loop(self) -> None:
        transport: Transport | None = None
        while True:
            with self._wake:
                while (taken := self.pending.take(MAX_BATCH, MAX_BATCH_BYTES)) is None:
                    self._wake.wait(self.pending.next_wait())
            batch, backoff = taken
            records, bodies = self._bodies(batch, backoff)
            if not records:
                continue
            body, count = payloads.join_events(bodies)
            if count < len(records):  # not all of one key and notifier: the rest go next
                with self._wake:
                    for record in records[count:]:
                        self.pending.put_back(record)
                records = records[:count]
            try:
                if transport is None:
                    with forkguard.no_fork:  # its first import of requests
                        transport = self._transport_factory()
                outcome = transport.send(records[0].envelope(body))
            except Exception as error:  # a broken transport must not end the sender
                outcome = Outcome(None, error=f"{type(error).__name__}: {error}")
            self._settle(records, backoff, outcome)

    def _bodies(
        self, batch: list[tuple[Record, bytes | None]], backoff: Backoff
    ) -> tuple[list[Record], list[bytes]]:
        """The records of a batch that are still to be sent, with their bodies."""
        records, bodies = [], []
        for record, body in batch:
            body = body if body is not None else self._read_back(record)
            if body is None:
                continue
            if self._wall_clock() - record.created_at > MAX_AGE_SECONDS:
                self._settle([record], backoff, None, "older than 60 days")
                continue
            records.append(record)
            bodies.append(body)
        return records, bodies

    def _read_back(self, record: Record) -> bytes | None:
        """A spilled or adopted record's body from disk; None after dropping the record."""
        body = self._keeper.read_back(record)
        if isinstance(body, bytes):
            return body
        with self._wake:
            removed = self.pending.finish(record, body)
            self._wake.notify_all()
        self._keeper.forget(removed)
        self._changed()
        return None

    def _settle(
        self, records: list[Record], backoff: Backoff, outcome: Outcome | None, dropped: str | None = None
    ) -> None:
        warning = None
        removed: list[Record] = []
        with self._wake:
            if outcome is None:
                for record in records:
                    removed += self.pending.finish(record, dropped)
            elif outcome.delivered:
                backoff.succeeded()
                self.stats.last_error = None  # the endpoint answers again: the error is history
                for record in records:
                    removed += self.pending.finish(record, None)
            elif outcome.undeliverable and len(records) > 1:
                # Refused together: one bad event must not take the others down with it.
                for record in records:
                    record.solo = True
                    self.pending.put_back(record)
                removed = self.pending.enforce_caps(self._caps)
            elif outcome.undeliverable:
                assert outcome.status is not None
                reason, sentence = refusal(outcome.status)
                self.stats.last_error = sentence
                removed = self.pending.finish(records[0], reason)
                if reason not in self._warned:
                    self._warned.add(reason)
                    warning = sentence
            else:
                delay = backoff.failed(outcome.retry_after)
                self.stats.retried += 1  # attempts, however many payloads each carried
                what = f"HTTP {outcome.status}" if outcome.status is not None else outcome.error
                self.stats.last_error = (
                    f"Sending to {_host(records[0].url)} failed ({what}); kept, next try in {delay:.3g}s."
                )
                for record in records:
                    self.pending.put_back(record)
                removed = self.pending.enforce_caps(self._caps)  # the cap skipped them in flight
            self._wake.notify_all()
        if warning:
            log.warning(warning)
        self._keeper.forget(removed)
        self._changed()

    def _changed(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                log.debug("state listener failed", exc_info=True)

    def _after_fork_in_child(self) -> None:
        # Only the forking thread survives, and locks may be held by threads that are gone;
        # the parent's payloads are the parent's to send. Start afresh, and let go of the
        # parent's outbox lock without unlocking it.
        #
        # A pool's workers are terminated (SIGTERM) once their work is done, often while their
        # sender is in the middle of a request, which then arrives without the worker marking
        # it sent, and the parent sends it again. So a child sends a stored payload only once
        # it is CHILD_HOLD_SECONDS old (or at a flush or exit): a worker that ends before, as
        # pool workers do, leaves it in its journal, and the parent, which watches for its
        # children ending, sends it once, at once. A payload the child could not store it
        # sends itself, at once.
        outbox = self._keeper.outbox
        self._start_afresh(self._keeper.directory)
        self._forked_child = True
        self._keeper.store_at_once()  # a child may os._exit right after an error: store it at once
        if outbox is not None:
            outbox.forget_after_fork()


def _after_fork(reference: weakref.ref[Delivery], *, child: bool) -> None:
    delivery = reference()
    if delivery is not None and child:
        delivery._after_fork_in_child()
    elif delivery is not None:
        delivery._keeper.watch_children()


def _host(url: str) -> str:
    return shown_host(url)  # never the credentials a URL may carry
