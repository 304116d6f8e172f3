"""What a process still has to send: per endpoint, in order, with the counters.

Pure bookkeeping, no threads and no I/O: `Delivery` calls every method with its lock held,
and marks the payloads these methods hand back as done.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.config import shown_host
from .payload import KINDS, Kind, Outcome, Payload, refusal
from .retry import Backoff, RetryPolicy

if TYPE_CHECKING:
    from .journal import Journal, Stored
    from .outbox import Scan

_sequence = itertools.count()
UNREADABLE = "unreadable file set aside"

@dataclass(eq=False, slots=True)  # eq=False: each item is itself, in sets and by identity
class Queued:
    """One payload to send: in memory (`body`), in a journal at `offset`, or both."""

    kind: Kind
    url: str
    api_key: str
    created_at: float
    size: int
    body: bytes | None
    own: bool  # made by this process: what flush() waits for
    journal: Journal | None = None
    ident: str = ""  # its id in the journal
    offset: int = -1  # of its body in the journal
    done: bool = False
    solo: bool = False  # sent on its own: a batch it was in was refused
    seq: int = field(default_factory=lambda: next(_sequence))

    @classmethod
    def made(cls, payload: Payload, *, own: bool) -> Queued:
        fields = payload.kind, payload.url, payload.api_key, payload.created_at, len(payload.body)
        return cls(*fields, payload.body, own)

    @property
    def stored(self) -> bool:
        return self.journal is not None

    def keep_in(self, journal: Journal, stored: Stored) -> None:
        self.journal, self.ident, self.offset = journal, stored.ident, stored.offset

    @classmethod
    def adopted(cls, journal: Journal, stored: Stored) -> Queued:
        fields = stored.kind, stored.url, stored.api_key, stored.created_at, stored.size
        return cls(*fields, None, False, journal, stored.ident, stored.offset)

    def read_back(self) -> bytes | None:
        """A spilled or adopted item's body, from its journal; None if it cannot be read."""
        try:
            return self.journal.read(self.offset, self.size) if self.journal is not None else None
        except (ValueError, OSError):
            return None

    def payload(self, body: bytes) -> Payload:
        return Payload(self.kind, self.url, self.api_key, body, self.created_at)


@dataclass
class Stats:
    delivered: int = 0
    retried: int = 0  # failed attempts that were kept for another try
    dropped: Counter[str] = field(default_factory=Counter)  # by reason
    last_error: str | None = None


class _Endpoint:
    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.own: deque[Queued] = deque()
        self.adopted: deque[Queued] = deque()

    def head(self) -> Queued | None:
        """The next item to send: this process's own first, oldest first."""
        for line in (self.own, self.adopted):
            while line and line[0].done:
                line.popleft()
            if line:
                return line[0]
        return None


class Backlog:
    def __init__(self, policy: RetryPolicy, monotonic: Callable[[], float]) -> None:
        self._policy = policy
        self._monotonic = monotonic
        self.stats = Stats()
        self._endpoints: dict[str, _Endpoint] = {}
        self._oldest: dict[Kind, list[tuple[float, int, Queued]]] = {kind: [] for kind in KINDS}
        self._counts: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        self.count = 0  # items not yet delivered or dropped
        self.own = 0  # ... of them made by this process
        self.stored = 0  # ... of them on disk
        self.memory = 0  # bytes of bodies held in memory
        self.in_flight: set[Queued] = set()  # the items of the send under way

    def by_kind(self, kind: Kind) -> int:
        return self._counts[kind]

    def endpoint(self, url: str) -> _Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = self._endpoints[url] = _Endpoint(Backoff(self._policy, self._monotonic))
        return endpoint

    # -- in and out -----------------------------------------------------------------------

    def add(self, item: Queued, caps: Mapping[Kind, int]) -> list[Queued]:
        """Queue a item; returns the items dropped to keep within the caps."""
        self.count += 1
        self._counts[item.kind] += 1
        self.own += item.own
        self.stored += item.stored
        self.memory += item.size if item.body is not None else 0
        endpoint = self.endpoint(item.url)
        (endpoint.own if item.own else endpoint.adopted).append(item)
        heapq.heappush(self._oldest[item.kind], (item.created_at, item.seq, item))
        return self.enforce_caps(caps, kinds=(item.kind,))

    def take(self, most: int, budget: int) -> tuple[list[tuple[Queued, bytes | None]], Backoff] | None:
        """The next items to send together, marked in flight, each with its body (None:
        read it from disk), and their endpoint's backoff; None while a send is under way or
        no endpoint may be tried. Own items of any ready endpoint go first.

        Events for one endpoint and key go together, up to `most` of them and `budget` bytes
        (BugSnag takes several events in one payload); a session, or a item whose batch was
        refused, goes alone."""
        if self.in_flight:
            return None
        choice: tuple[Queued, _Endpoint] | None = None
        for endpoint in self._endpoints.values():
            item = endpoint.head()
            if item is None or not endpoint.backoff.ready():
                continue
            if item.own:
                choice = (item, endpoint)
                break
            if choice is None:
                choice = (item, endpoint)
        if choice is None:
            return None
        first, endpoint = choice
        batch = [first]
        if first.kind == "event" and not first.solo:
            size = first.size
            for item in itertools.chain(endpoint.own, endpoint.adopted):
                if len(batch) >= most:
                    break
                if item is first or item.done or item.solo:
                    continue
                if item.kind != first.kind or item.api_key != first.api_key:
                    continue
                if size + item.size > budget:
                    break
                size += item.size
                batch.append(item)
        self.in_flight.update(batch)
        return [(item, item.body) for item in batch], endpoint.backoff

    def next_wait(self) -> float | None:
        """Seconds until some endpoint with items may be tried; None: nothing to send."""
        waits = [
            endpoint.backoff.wait() for endpoint in self._endpoints.values() if endpoint.head()
        ]
        return min(waits) if waits else None

    def finish(self, item: Queued, dropped: str | None) -> list[Queued]:
        """Delivered (`dropped` None) or dropped for that reason; returns [item] so its
        file is deleted, or [] if it was already finished."""
        self.in_flight.discard(item)
        if item.done:
            return []
        item.done = True
        self.count -= 1
        self._counts[item.kind] -= 1
        self.own -= item.own
        self.stored -= item.stored
        if item.body is not None:
            self.memory -= item.size
            item.body = None
        if dropped is None:
            self.stats.delivered += 1
        else:
            self.stats.dropped[dropped] += 1
        return [item]

    def put_back(self, item: Queued) -> None:
        """Not sent after all (a retryable failure, or left out of a batch): the item keeps
        its place in line, behind its endpoint's backoff."""
        self.in_flight.discard(item)

    def hurry(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.backoff.hurry()

    # -- disk and memory ------------------------------------------------------------------

    def now_stored(self, item: Queued, journal: Journal, stored: Stored, budget: int) -> None:
        """An item that was in memory only is now on disk too; past the memory `budget`, its
        body is let go of (the sender reads it back)."""
        item.keep_in(journal, stored)
        self.stored += 1
        if self.memory > budget:
            self.spill(item)

    def adopt(self, scan: Scan, caps: Mapping[Kind, int]) -> list[Queued]:
        """Queue what a look through the outbox adopted, and count what it discarded."""
        for reason, count in (
            ("older than 60 days", scan.expired),
            ("over the stored cap", scan.over_cap),
            (UNREADABLE, len(scan.set_aside)),
        ):
            if count:
                self.stats.dropped[reason] += count
        removed: list[Queued] = []
        for journal, stored in scan.adopted:
            removed += self.add(Queued.adopted(journal, stored), caps)
        return removed

    def after_send(
        self, items: list[Queued], backoff: Backoff, outcome: Outcome | None, dropped: str | None,
        caps: Mapping[Kind, int],
    ) -> tuple[list[Queued], tuple[str, str] | None]:
        """What an attempt (`outcome`), or a drop before it (`dropped`), did to its items: the
        items done, and the warning to say once (its key, its sentence), if any."""
        if outcome is None:
            return [gone for item in items for gone in self.finish(item, dropped)], None
        if outcome.delivered:
            backoff.succeeded()
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
            delay = backoff.failed(outcome.retry_after)
            self.stats.retried += 1  # attempts, however many payloads each carried
            what = f"HTTP {outcome.status}" if outcome.status is not None else outcome.error
            self.stats.last_error = (
                f"Sending to {shown_host(items[0].url)} failed ({what}); kept, next try in {delay:.3g}s."
            )
        for item in items:
            self.put_back(item)
        return self.enforce_caps(caps), None  # the cap skipped them in flight

    def spill(self, item: Queued) -> None:
        """Let go of a stored item's body; the sender reads it back from disk."""
        if item.stored and item.body is not None and not item.done:
            self.memory -= item.size
            item.body = None

    def enforce_caps(self, caps: Mapping[Kind, int], kinds: tuple[Kind, ...] = KINDS) -> list[Queued]:
        """Drop the oldest items of each kind beyond its cap.

        Items in flight are neither dropped nor counted here: the send decides their fate,
        and a failed one is measured against the cap again when it is put back (`Delivery`
        calls this then), so that a newer item is never dropped in an older one's place."""
        removed: list[Queued] = []
        for kind in kinds:
            heap, kept = self._oldest[kind], []
            # Every submit passes here, on the cell's thread: count what flies only when over.
            over = self._counts[kind] > caps[kind]
            flying = sum(1 for item in self.in_flight if item.kind == kind) if over else 0
            while over and self._counts[kind] - flying > caps[kind] and heap:
                entry = heapq.heappop(heap)
                item = entry[2]
                if item.done:
                    continue
                if item in self.in_flight:
                    kept.append(entry)
                    continue
                removed += self.finish(item, "over the stored cap")
            for entry in kept:
                heapq.heappush(heap, entry)
            if len(heap) > 2 * self._counts[kind] + 1024:  # done items linger in the heap
                self._oldest[kind] = [entry for entry in heap if not entry[2].done]
                heapq.heapify(self._oldest[kind])
        return removed

    def may_leave(self, deadline: float) -> bool:
        """Whether an exit need wait no longer: no own item is left, or every one is on disk
        and none could be tried before `deadline` (the next kernel delivers them)."""
        if self.own == 0:
            return True
        if self.in_flight:
            return False
        for endpoint in self._endpoints.values():
            live = [item for item in endpoint.own if not item.done]
            if not live:
                continue
            if not all(item.stored for item in live):
                return False
            if endpoint.backoff.next_attempt <= deadline:
                return False
        return True
