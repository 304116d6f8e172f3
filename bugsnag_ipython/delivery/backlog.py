"""What a process still has to send, per endpoint, in order, with the counters. Bookkeeping only:
`Delivery` calls it under its lock and `settle`s the items its methods hand back."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.config import shown_host
from .payload import KINDS, Kind, Outcome, Payload, RetryPolicy, refusal

if TYPE_CHECKING:
    from .journal import Journal, Stored
    from .outbox import Scan

_sequence = itertools.count()
UNREADABLE = "unreadable file set aside"
OVER_CAP = "over the stored cap"
EXPIRED = "older than 60 days"


@dataclass(eq=False, slots=True)  # eq=False: each item is itself, in sets and by identity
class Queued:
    """One payload to send: in memory (`body`), in a journal at `offset`, or both."""

    kind: Kind  # the first five as in a Payload
    url: str
    api_key: str
    body: bytes | None
    created_at: float
    size: int
    own: bool  # made by this process: what flush() waits for
    journal: Journal | None = None
    ident: str = ""  # its id in the journal
    offset: int = -1  # of its body in the journal
    done: bool = False
    solo: bool = False  # sent on its own: a batch it was in was refused
    seq: int = field(default_factory=lambda: next(_sequence))

    def payload(self, body: bytes) -> Payload:
        return Payload(self.kind, self.url, self.api_key, body, self.created_at)


def settle(items: list[Queued]) -> None:
    """Mark items delivered or dropped as done in their journals, one line per journal."""
    done: dict[Journal, list[str]] = {}
    for item in items:
        if item.journal is not None:
            done.setdefault(item.journal, []).append(item.ident)
    for journal, idents in done.items():
        journal.settle(idents)


@dataclass
class Stats:
    """What delivery has done so far, for status, the panel and `outbox flush`."""

    delivered: int = 0
    retried: int = 0  # failed attempts that were kept for another try
    dropped: Counter[str] = field(default_factory=Counter)  # by reason
    last_error: str | None = None


class Endpoint:
    """One endpoint's line and its retry timer: a hundred payloads wait behind one timer."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.own: deque[Queued] = deque()
        self.adopted: deque[Queued] = deque()
        self.failures = 0
        self.next_attempt = 0.0  # on the delivery's monotonic clock
        self.imposed_until = 0.0  # a Retry-After: not even flush() tries before this

    def head(self) -> Queued | None:
        """The next item to send: this process's own first, oldest first."""
        for line in (self.own, self.adopted):
            while line and line[0].done:
                line.popleft()
            if line:
                return line[0]
        return None

    def wait(self) -> float:
        """Seconds until the endpoint may be tried again (0 when it may now)."""
        return max(0.0, self.next_attempt - self._clock())


class Backlog:
    """What waits to be sent, per endpoint, and the counters."""

    def __init__(self, policy: RetryPolicy, monotonic: Callable[[], float]) -> None:
        self._policy = policy
        self._monotonic = monotonic
        self.stats = Stats()
        self._endpoints: dict[str, Endpoint] = {}
        self._oldest: dict[Kind, list[tuple[float, int, Queued]]] = {kind: [] for kind in KINDS}
        self.counts: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        self.count = 0  # items not yet delivered or dropped
        self.own = 0  # ... of them made by this process
        self.stored = 0  # ... of them on disk
        self.memory = 0  # bytes of bodies held in memory
        self.in_flight: set[Queued] = set()  # the items of the send under way

    def endpoint(self, url: str) -> Endpoint:
        return self._endpoints.get(url) or self._endpoints.setdefault(url, Endpoint(self._monotonic))

    def add(self, item: Queued, caps: Mapping[Kind, int]) -> list[Queued]:
        """Queue an item; returns the items dropped to keep within the caps."""
        self.count += 1
        self.counts[item.kind] += 1
        self.own += item.own
        self.stored += item.journal is not None
        self.memory += item.size if item.body is not None else 0
        endpoint = self.endpoint(item.url)
        (endpoint.own if item.own else endpoint.adopted).append(item)
        heapq.heappush(self._oldest[item.kind], (item.created_at, item.seq, item))
        return self.enforce_caps(caps, kinds=(item.kind,))

    def take(self, most: int, budget: int) -> tuple[list[Queued], Endpoint] | None:
        """The next items to send (own first), marked in flight, and their endpoint: events for one
        endpoint and key together, up to `most` and `budget` bytes; None while none may go."""
        if self.in_flight:
            return None
        ready = [(item, endpoint) for endpoint in self._endpoints.values()
                 if (item := endpoint.head()) is not None and not endpoint.wait()]
        if not ready:
            return None
        first, endpoint = min(ready, key=lambda pair: not pair[0].own)
        batch, size = [first], first.size
        if first.kind == "event" and not first.solo:
            for item in itertools.chain(endpoint.own, endpoint.adopted):
                if item is first or item.done or item.solo or item.kind != "event":
                    continue
                if item.api_key != first.api_key:
                    continue
                if len(batch) >= most or size + item.size > budget:
                    break
                size += item.size
                batch.append(item)
        self.in_flight.update(batch)
        return batch, endpoint

    def next_wait(self) -> float | None:
        """Seconds until some endpoint with items may be tried; None: nothing to send."""
        waits = [endpoint.wait() for endpoint in self._endpoints.values() if endpoint.head()]
        return min(waits, default=None)

    def finish(self, item: Queued, dropped: str | None) -> list[Queued]:
        """Delivered (`dropped` None) or dropped; [item] to settle, or [] if already finished."""
        self.in_flight.discard(item)
        if item.done:
            return []
        item.done = True
        self.count -= 1
        self.counts[item.kind] -= 1
        self.own -= item.own
        self.stored -= item.journal is not None
        if item.body is not None:
            self.memory -= item.size
            item.body = None
        if dropped is None:
            self.stats.delivered += 1
        else:
            self.stats.dropped[dropped] += 1
        return [item]

    def hurry(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.next_attempt = min(endpoint.next_attempt, max(self._monotonic(), endpoint.imposed_until))

    def now_stored(self, item: Queued, journal: Journal, stored: Stored, budget: int) -> None:
        """An item in memory is now on disk too; past the memory `budget`, its body is let go of."""
        item.journal, item.ident, item.offset = journal, stored.ident, stored.offset
        self.stored += 1
        if self.memory > budget and item.body is not None and not item.done:
            self.memory -= item.size
            item.body = None

    def adopt(self, scan: Scan, caps: Mapping[Kind, int]) -> list[Queued]:
        """Queue what a look through the outbox adopted, and count what it discarded."""
        counts = {EXPIRED: scan.expired, OVER_CAP: scan.over_cap, UNREADABLE: len(scan.set_aside)}
        self.stats.dropped += Counter(counts)  # += keeps positive counts only
        removed: list[Queued] = []
        for journal, one in scan.adopted:
            fields = one.kind, one.url, one.api_key, None, one.created_at, one.size
            removed += self.add(Queued(*fields, False, journal, one.ident, one.offset), caps)
        return removed

    def after_send(self, items: list[Queued], endpoint: Endpoint, outcome: Outcome,
                   caps: Mapping[Kind, int]) -> tuple[list[Queued], tuple[str, str] | None]:
        """The items an attempt finished, and the warning (key, sentence) to say once, if any."""
        if outcome.delivered:
            endpoint.failures = 0
            endpoint.next_attempt = endpoint.imposed_until = 0.0
            self.stats.last_error = None  # the endpoint answers again: the error is history
            return [gone for item in items for gone in self.finish(item, None)], None
        if outcome.undeliverable and len(items) == 1:
            assert outcome.status is not None
            reason, sentence = refusal(outcome.status)
            self.stats.last_error = sentence
            return self.finish(items[0], reason), (reason, sentence)
        if outcome.undeliverable:
            for item in items:  # refused together: one bad event must not take the others down
                item.solo = True
        else:
            endpoint.failures += 1
            now, delay = self._monotonic(), outcome.retry_after
            if delay is None:
                delay = self._policy.delay(endpoint.failures, random.random())
            else:
                endpoint.imposed_until = now + delay
            endpoint.next_attempt = now + delay
            self.stats.retried += 1  # attempts, however many payloads each carried
            what = f"HTTP {outcome.status}" if outcome.status is not None else outcome.error
            host = shown_host(items[0].url)
            self.stats.last_error = f"Sending to {host} failed ({what}); kept, next try in {delay:.3g}s."
        self.in_flight.difference_update(items)  # kept, in their place in line
        return self.enforce_caps(caps), None  # the cap skipped them in flight

    def enforce_caps(self, caps: Mapping[Kind, int], kinds: tuple[Kind, ...] = KINDS) -> list[Queued]:
        """Drop the oldest items of each kind beyond its cap. Items in flight are neither dropped
        nor counted: a failed one meets the cap when put back, so no newer one goes in its place."""
        removed: list[Queued] = []
        for kind in kinds:
            if self.counts[kind] <= caps[kind]:  # on every submit: count what flies only when over
                continue
            heap, kept = self._oldest[kind], []
            flying = sum(1 for item in self.in_flight if item.kind == kind)
            while self.counts[kind] - flying > caps[kind] and heap:
                entry = heapq.heappop(heap)
                if entry[2] in self.in_flight:
                    kept.append(entry)
                else:
                    removed += self.finish(entry[2], OVER_CAP)
            for entry in kept:
                heapq.heappush(heap, entry)
        for kind in kinds:  # done items linger in the heap
            if len(self._oldest[kind]) > 2 * self.counts[kind] + 1024:
                self._oldest[kind] = [entry for entry in self._oldest[kind] if not entry[2].done]
                heapq.heapify(self._oldest[kind])
        return removed

    def may_leave(self, deadline: float) -> bool:
        """Whether an exit need wait no longer: no own item is left, or all are on disk and none
        could be tried before `deadline` (the next kernel delivers them)."""
        if self.own == 0:
            return True
        if self.in_flight:
            return False
        for endpoint in self._endpoints.values():
            live = [item for item in endpoint.own if not item.done]
            if any(item.journal is None for item in live):
                return False
            if live and endpoint.next_attempt <= deadline:
                return False
        return True
