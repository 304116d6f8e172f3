"""The payloads a process still has to send: per endpoint, in order, with the counters.

Pure bookkeeping, no threads and no I/O: `Delivery` calls every method with its lock held,
and deletes the files of the records these methods hand back.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .retry import Backoff, RetryPolicy
from .transport import KINDS, Envelope, Kind

if TYPE_CHECKING:
    from .journal import Journal
    from .outbox import Outbox, Stored

_sequence = itertools.count()


class Record:
    """One payload to send: in memory (`body`), on disk (in a `journal` at `offset`, or in a
    file of its own at `path`), or both."""

    __slots__ = (
        "api_key",
        "body",
        "created_at",
        "done",
        "ident",
        "journal",
        "kind",
        "offset",
        "outbox",
        "own",
        "path",
        "seq",
        "size",
        "solo",
        "url",
    )

    def __init__(self, envelope: Envelope, *, own: bool) -> None:
        self.kind: Kind = envelope.kind
        self.url = envelope.url
        self.api_key = envelope.api_key
        self.created_at = envelope.created_at
        self.body: bytes | None = envelope.body
        self.size = len(envelope.body)
        self.own = own  # made by this process: what flush() waits for
        self.path: Path | None = None
        self.journal: Journal | None = None
        self.ident = ""  # its id in the journal
        self.offset = -1  # of its body in the journal
        self.outbox: Outbox | None = None
        self.done = False
        self.solo = False  # sent on its own: a batch it was in was refused
        self.seq = next(_sequence)

    @property
    def stored(self) -> bool:
        return self.path is not None or self.journal is not None

    def keep_in(self, outbox: Outbox, journal: Journal, ident: str, offset: int) -> None:
        self.outbox, self.journal, self.ident, self.offset = outbox, journal, ident, offset
        self.path = None

    def file_at(self, outbox: Outbox, path: Path) -> None:
        self.outbox, self.path = outbox, path
        self.journal, self.offset = None, -1

    @classmethod
    def adopted(cls, stored: Stored, outbox: Outbox) -> Record:
        record = cls(Envelope(stored.kind, stored.url, stored.api_key, b"", stored.created_at), own=False)
        record.body, record.size = None, stored.size
        record.path, record.outbox = stored.path, outbox
        return record

    def envelope(self, body: bytes) -> Envelope:
        return Envelope(self.kind, self.url, self.api_key, body, self.created_at)


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0  # failed attempts that were kept for another try
    dropped: Counter[str] = field(default_factory=Counter)  # by reason
    last_error: str | None = None


class _Endpoint:
    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.own: deque[Record] = deque()
        self.adopted: deque[Record] = deque()

    def head(self) -> Record | None:
        """The next record to send: this process's own first, oldest first."""
        for line in (self.own, self.adopted):
            while line and line[0].done:
                line.popleft()
            if line:
                return line[0]
        return None


class Pending:
    def __init__(self, policy: RetryPolicy, monotonic: Callable[[], float]) -> None:
        self._policy = policy
        self._monotonic = monotonic
        self.stats = DeliveryStats()
        self._endpoints: dict[str, _Endpoint] = {}
        self._oldest: dict[Kind, list[tuple[float, int, Record]]] = {kind: [] for kind in KINDS}
        self._counts: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        self.count = 0  # records not yet delivered or dropped
        self.own = 0  # ... of them made by this process
        self.stored = 0  # ... of them on disk
        self.memory = 0  # bytes of bodies held in memory
        self.in_flight: set[Record] = set()  # the records of the send under way

    def by_kind(self, kind: Kind) -> int:
        return self._counts[kind]

    def endpoint(self, url: str) -> _Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = self._endpoints[url] = _Endpoint(Backoff(self._policy, self._monotonic))
        return endpoint

    # -- in and out -----------------------------------------------------------------------

    def add(self, record: Record, caps: Mapping[Kind, int]) -> list[Record]:
        """Queue a record; returns the records dropped to keep within the caps."""
        self.count += 1
        self._counts[record.kind] += 1
        self.own += record.own
        self.stored += record.stored
        self.memory += record.size if record.body is not None else 0
        endpoint = self.endpoint(record.url)
        (endpoint.own if record.own else endpoint.adopted).append(record)
        heapq.heappush(self._oldest[record.kind], (record.created_at, record.seq, record))
        return self.enforce_caps(caps, kinds=(record.kind,))

    def take(self, most: int, budget: int) -> tuple[list[tuple[Record, bytes | None]], Backoff] | None:
        """The next records to send together, marked in flight, each with its body (None:
        read it from disk), and their endpoint's backoff; None while a send is under way or
        no endpoint may be tried. Own records of any ready endpoint go first.

        Events for one endpoint and key go together, up to `most` of them and `budget` bytes
        (BugSnag takes several events in one payload); a session, or a record whose batch was
        refused, goes alone."""
        if self.in_flight:
            return None
        choice: tuple[Record, _Endpoint] | None = None
        for endpoint in self._endpoints.values():
            record = endpoint.head()
            if record is None or not endpoint.backoff.ready():
                continue
            if record.own:
                choice = (record, endpoint)
                break
            if choice is None:
                choice = (record, endpoint)
        if choice is None:
            return None
        first, endpoint = choice
        batch = [first]
        if first.kind == "event" and not first.solo:
            size = first.size
            for record in itertools.chain(endpoint.own, endpoint.adopted):
                if len(batch) >= most:
                    break
                if record is first or record.done or record.solo:
                    continue
                if record.kind != first.kind or record.api_key != first.api_key:
                    continue
                if size + record.size > budget:
                    break
                size += record.size
                batch.append(record)
        self.in_flight.update(batch)
        return [(record, record.body) for record in batch], endpoint.backoff

    def next_wait(self) -> float | None:
        """Seconds until some endpoint with records may be tried; None: nothing to send."""
        waits = [
            endpoint.backoff.wait() for endpoint in self._endpoints.values() if endpoint.head()
        ]
        return min(waits) if waits else None

    def finish(self, record: Record, dropped: str | None) -> list[Record]:
        """Delivered (`dropped` None) or dropped for that reason; returns [record] so its
        file is deleted, or [] if it was already finished."""
        self.in_flight.discard(record)
        if record.done:
            return []
        record.done = True
        self.count -= 1
        self._counts[record.kind] -= 1
        self.own -= record.own
        self.stored -= record.stored
        if record.body is not None:
            self.memory -= record.size
            record.body = None
        if dropped is None:
            self.stats.delivered += 1
        else:
            self.stats.dropped[dropped] += 1
        return [record]

    def put_back(self, record: Record) -> None:
        """Not sent after all (a retryable failure, or left out of a batch): the record keeps
        its place in line, behind its endpoint's backoff."""
        self.in_flight.discard(record)

    def hurry(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.backoff.hurry()

    # -- disk and memory ------------------------------------------------------------------

    def now_stored(self, record: Record) -> None:
        """A record that was in memory only is now on disk too (its place is set)."""
        self.stored += 1

    def stored_in(self, journal: Journal) -> list[Record]:
        """The records still to send whose only copy on disk is in `journal`."""
        return [
            record
            for endpoint in self._endpoints.values()
            for record in endpoint.own
            if record.journal is journal and not record.done
        ]

    def spill(self, record: Record) -> None:
        """Let go of a stored record's body; the sender reads it back from disk."""
        if record.stored and record.body is not None and not record.done:
            self.memory -= record.size
            record.body = None

    def enforce_caps(self, caps: Mapping[Kind, int], kinds: tuple[Kind, ...] = KINDS) -> list[Record]:
        """Drop the oldest records of each kind beyond its cap.

        Records in flight are neither dropped nor counted here: the send decides their fate,
        and a failed one is measured against the cap again when it is put back (`Delivery`
        calls this then), so that a newer record is never dropped in an older one's place."""
        removed: list[Record] = []
        for kind in kinds:
            heap, kept = self._oldest[kind], []
            # Every submit passes here, on the cell's thread: count what flies only when over.
            over = self._counts[kind] > caps[kind]
            flying = sum(1 for record in self.in_flight if record.kind == kind) if over else 0
            while over and self._counts[kind] - flying > caps[kind] and heap:
                entry = heapq.heappop(heap)
                record = entry[2]
                if record.done:
                    continue
                if record in self.in_flight:
                    kept.append(entry)
                    continue
                removed += self.finish(record, "over the stored cap")
            for entry in kept:
                heapq.heappush(heap, entry)
            if len(heap) > 2 * self._counts[kind] + 1024:  # done records linger in the heap
                self._oldest[kind] = [entry for entry in heap if not entry[2].done]
                heapq.heapify(self._oldest[kind])
        return removed

    def own_stored_and_waiting(self, deadline: float) -> bool:
        """True when every own record is on disk and none could be tried before `deadline`."""
        for endpoint in self._endpoints.values():
            live = [record for record in endpoint.own if not record.done]
            if not live:
                continue
            if not all(record.stored for record in live):
                return False
            if endpoint.backoff.next_attempt <= deadline:
                return False
        return True
