"""Delivery: every payload reaches its endpoint once, is kept on disk until it does, or is dropped
on purpose, counted and said. `submit()` stores on the thread that made the payload, so a kernel
killed right after an error leaves it on disk; one daemon thread, the sender, does the rest."""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from ..core import forkguard
from ..core.basics import JsonDict, Once, log, tell
from ..report import payloads
from ..report.trimming import MAX_PAYLOAD_BYTES
from .backlog import EXPIRED, UNREADABLE, Backlog, Queued, settle
from .payload import KINDS, MAX_AGE_SECONDS, Kind, Outcome, Payload, RetryPolicy
from .transport import HttpTransport, Transport

if TYPE_CHECKING:
    from ..core.config import Configuration
    from .outbox import Outbox

MEMORY_BUDGET = 16 * 1024 * 1024  # bodies kept in memory; past it they are read back from disk
CHILD_HOLD_SECONDS = 10.0  # a forked child's payloads wait this long for the parent (see below)
MAX_BATCH = 100  # events sent in one request, at most, and at most one payload's bytes
RESCAN_SECONDS = 30.0  # how often the outbox is looked through for payloads of kernels that died
CHILD_WATCH_SECONDS = 0.25  # how often a process that forked looks for children that ended


class Delivery:
    """The outbox and the sender of one process."""

    def __init__(self, transport_factory: Callable[[], Transport] = HttpTransport, *,
                 policy: RetryPolicy | None = None, monotonic: Callable[[], float] = time.monotonic,
                 memory_budget: int = MEMORY_BUDGET) -> None:
        self._transport_factory = transport_factory
        self._policy = policy or RetryPolicy.from_environment()
        self._monotonic = monotonic
        self._memory_budget = memory_budget
        self._caps: dict[Kind, int] = {"session": 1000, "event": 10000}
        self._directory: str | None = None
        self.listeners: list[Callable[[], None]] = []
        self._start_afresh()
        self._watching_children = False  # this process forked: look for children that ended
        if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
            reference = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(reference, child=True),
                                after_in_parent=lambda: _after_fork(reference, child=False))

    def _start_afresh(self) -> None:
        self._wake = threading.Condition(threading.Lock())  # guards the backlog and the outbox
        self.backlog = Backlog(self._policy, self._monotonic)
        self.stats = self.backlog.stats
        self._said = Once()
        self._thread: threading.Thread | None = None
        self._opening = threading.Lock()  # one thread opens the outbox; others wait for it
        self.outbox: Outbox | None = None  # open: any thread may store in it
        self._outbox_failed = False
        self.problem: str | None = None  # why payloads are kept in memory only, for status
        self._unstored: list[Queued] = []  # made before the outbox was open: the sender stores them
        self.scanned = threading.Event()  # the first look through the outbox is done
        self._next_scan = 0.0
        self._next_child_look = 0.0
        self._launched = False  # the launch session leaves the outbox to the sender: loading never waits

    @property
    def queued(self) -> int:
        """Payloads this process still has to send (its own and adopted ones)."""
        return self.backlog.count

    @property
    def stored(self) -> int:
        """Of those, how many are on disk."""
        return self.backlog.stored

    def retry_in(self) -> float | None:
        """Seconds until what waits is tried again (0: now or under way; None: nothing waits)."""
        with self._wake:
            return 0.0 if self.backlog.in_flight else self.backlog.next_wait()

    def counters(self) -> JsonDict:
        """A consistent snapshot of the counters, for the status panel."""
        with self._wake:
            return {**asdict(self.stats), "queued": self.backlog.count, "stored": self.backlog.stored}

    def reconfigure(self, config: Configuration) -> None:
        """Take the outbox directory and the caps; payloads stored so far stay where they are."""
        with self._wake:
            self._caps = {"session": config.max_stored_sessions, "event": config.max_stored_events}
            removed = self.backlog.enforce_caps(self._caps)
            if config.persistence_directory != self._directory:
                self._directory = config.persistence_directory
                self.outbox, self._outbox_failed, self.problem = None, False, None
                self.scanned.clear()
                self._wake.notify_all()
        settle(removed)

    def submit(self, payload: Payload) -> None:
        """Store a payload and queue it for the sender; never waits on the network."""
        item = Queued(*payload, len(payload.body), True)
        # A forked child stores at once: it may end (os._exit) before a sender thread could.
        outbox = self._outbox_now(may_import=forkguard.forked)
        self._launched = True
        place = outbox.keep(payload) if outbox is not None else None
        with self._wake:
            self._ensure_thread_locked()
            removed = self.backlog.add(item, self._caps)
            if place is not None:
                self.backlog.now_stored(item, *place, self._memory_budget)
            elif outbox is None and not self._outbox_failed:
                self._unstored.append(item)
            endpoint = self.backlog.endpoint(item.url)
            if forkguard.forked and place is not None and not endpoint.wait():
                endpoint.next_attempt = self._monotonic() + CHILD_HOLD_SECONDS  # see _forked
            if self._unstored or (not self.backlog.in_flight and not endpoint.wait()):
                # Woken for nothing, the sender would take the GIL from this (cell) thread.
                self._wake.notify_all()
        settle(removed)
        self._changed()

    def flush(self, timeout: float = 5.0) -> bool:
        """Retry now (but not before a Retry-After); True once none of this process's own is left."""
        return self._wait(timeout, lambda _deadline: self.backlog.own == 0)

    def close(self, timeout: float) -> bool:
        """The exit flush: at most `timeout` seconds; what is left stays on disk."""
        self._wait(timeout, self.backlog.may_leave)
        return self.backlog.own == 0

    def drain(self, timeout: float) -> bool:
        """Adopt what the outbox holds and deliver everything (`bugsnag-ipython outbox flush`)."""
        with self._wake:
            self._ensure_thread_locked()
        return self._wait(timeout, lambda _deadline: self.scanned.is_set() and self.backlog.count == 0)

    def _wait(self, timeout: float, done: Callable[[float], bool]) -> bool:
        deadline = self._monotonic() + max(0.0, timeout)
        with self._wake:
            self.backlog.hurry()
            self._wake.notify_all()
            return self._wake.wait_for(lambda: done(deadline), max(0.0, timeout))

    def _outbox_now(self, *, may_import: bool) -> Outbox | None:
        """The open outbox, opening it if need be: cheap for any thread, except importing
        platformdirs for the default directory, which a cell's thread leaves to the sender."""
        if self.outbox is not None or self._outbox_failed:
            return self.outbox
        default_unimported = self._directory is None and "platformdirs" not in sys.modules
        if not may_import and (not self._launched or default_unimported):
            return None
        from .outbox import open_outbox

        with self._opening:
            directory = self._directory
            if self.outbox is not None or self._outbox_failed:
                return self.outbox
            with forkguard.no_fork:  # outbox, and platformdirs for the default directory
                outbox, problem = open_outbox(directory)
            with self._wake:
                if outbox is not None and directory == self._directory and self.outbox is None:
                    self.outbox = outbox
                    return outbox
                if outbox is None:
                    self.problem, self._outbox_failed = problem, True
                    self._unstored.clear()
            if outbox is None:
                self._changed()
            else:
                outbox.close()  # reconfigured meanwhile (the next turn opens the new directory)
        return None

    def _keep_outbox(self) -> None:
        """Open the outbox, store what came before it was open, look for what dead kernels left."""
        if self.outbox is None and not self._outbox_failed:
            self._outbox_now(may_import=True)
            self._next_scan = 0.0
        self._store_unstored()
        now, outbox, died = self._monotonic(), self.outbox, False
        if self._watching_children and now >= self._next_child_look and outbox is not None:
            self._next_child_look = now + CHILD_WATCH_SECONDS
            died = outbox.an_owner_died()
        if now >= self._next_scan or died:
            self._rescan()
            self._next_scan = self._monotonic() + RESCAN_SECONDS

    def _store_unstored(self) -> None:
        with self._wake:
            items, self._unstored = self._unstored, []
            outbox = self.outbox
        for item in items:
            body = item.body
            place = outbox.keep(item.payload(body)) if outbox is not None and body is not None else None
            if place is None:
                continue
            with self._wake:
                if item.done:  # delivered or dropped while it was being written
                    place[0].settle([place[1].ident])
                else:
                    self.backlog.now_stored(item, *place, self._memory_budget)

    def _rescan(self) -> None:
        with self._wake:
            outbox = None if forkguard.forked else self.outbox  # a child leaves it to the parent
            room = {kind: self._caps[kind] - self.backlog.counts[kind] for kind in KINDS}
        try:
            scan = outbox.adopt(room, self._store_unstored) if outbox is not None else None
        except Exception as error:
            log.warning("Could not look through the outbox in %s: %s", outbox and outbox.root, error)
            scan = None
        with self._wake:
            settle(self.backlog.adopt(scan, self._caps) if scan is not None else [])
            self.scanned.set()
            self._wake.notify_all()
        self._changed()

    def _ensure_thread_locked(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="bugsnag-sender", daemon=True)
            self._thread.start()

    def _due_in(self) -> float:
        if self._unstored or (self.outbox is None and not self._outbox_failed):
            return 0.0
        look = min(self._next_scan, self._next_child_look) if self._watching_children else self._next_scan
        return max(0.0, look - self._monotonic())

    def _run(self) -> None:
        transport: Transport | None = None
        while True:
            self._keep_outbox()
            with self._wake:
                while (taken := self.backlog.take(MAX_BATCH, MAX_PAYLOAD_BYTES)) is None:
                    due = self._due_in()
                    if due <= 0:
                        break
                    wait = self.backlog.next_wait()
                    self._wake.wait(due if wait is None else min(due, wait))
            if taken is None:
                continue
            batch, endpoint = taken
            items, bodies = self._sendable(batch)
            if not items:
                continue
            body, count = payloads.join_events(bodies)
            if count < len(items):  # not all of one key and notifier: the rest go next
                with self._wake:
                    self.backlog.in_flight.difference_update(items[count:])
                items = items[:count]
            try:
                if transport is None:
                    with forkguard.no_fork:  # its first import of requests
                        transport = self._transport_factory()
                outcome = transport.send(items[0].payload(body))
            except Exception as error:  # a broken transport must not end the sender
                outcome = Outcome(None, error=f"{type(error).__name__}: {error}")
            with self._wake:
                removed, warning = self.backlog.after_send(items, endpoint, outcome, self._caps)
                self._settle_locked(removed)
            if warning:
                self._said.say(*warning)
            self._changed()

    def _sendable(self, batch: list[Queued]) -> tuple[list[Queued], list[bytes]]:
        items, bodies = [], []
        for item in batch:
            body = item.body  # once: a store may let go of it meanwhile
            if body is None and item.journal is not None:
                body = item.journal.read(item.offset, item.size)
            if body is not None and time.time() - item.created_at <= MAX_AGE_SECONDS:
                items.append(item)
                bodies.append(body)
                continue
            with self._wake:
                reason = UNREADABLE if body is None else EXPIRED
                self._settle_locked(self.backlog.finish(item, reason))
            self._changed()
        return items, bodies

    def _settle_locked(self, removed: list[Queued]) -> None:
        settle(removed)  # on disk before a flush sees them done: a child may exit right after
        self._wake.notify_all()

    def _changed(self) -> None:
        tell(self.listeners, "delivery")

    def _forked(self, *, child: bool) -> None:
        if not child:  # adopt what a child left as soon as it ends, not at the next rescan
            self._watching_children = True
            if self._wake.acquire(blocking=False):  # never wait here, in the thread that forked
                self._wake.notify_all()
                self._wake.release()
            return
        # Start afresh: threads the fork left behind may hold locks. A pool ends its workers
        # mid-request, so a child's stored payload waits CHILD_HOLD_SECONDS (or a flush) for the parent.
        outbox = self.outbox
        self._start_afresh()
        self._watching_children, self._launched = False, True
        if outbox is not None:
            outbox.close(after_fork=True)


def _after_fork(reference: weakref.ref[Delivery], *, child: bool) -> None:
    delivery = reference()
    if delivery is not None:
        delivery._forked(child=child)
