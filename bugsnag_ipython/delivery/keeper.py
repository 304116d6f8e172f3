"""The keeper: the disk work of delivery, which must neither delay a cell nor wait behind a send.

`OutboxKeeper` owns the outbox and the keeper thread. It opens the outbox (resolving the
default directory imports platformdirs, so a cell's thread leaves that to the keeper thread),
appends payloads to the journal, files the payloads of a journal grown past its limit into
files of their own, settles what was delivered or dropped, and adopts what dead kernels left,
at launch and every `RESCAN_SECONDS`. The records it keeps are the sender's `Pending`, under
the lock of the condition the sender hands it: the keeper changes them only through
`Pending`'s own calls.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import forkguard
from .journal import LIMIT as JOURNAL_LIMIT
from .journal import Journal, Retired
from .pending import Pending, Record
from .transport import KINDS, Kind

if TYPE_CHECKING:
    from .adoption import Scan
    from .outbox import Outbox

log = logging.getLogger("bugsnag_ipython")
RESCAN_SECONDS = 30.0  # how often the keeper looks for payloads of kernels that died
REOPEN = object()  # the keeper's queue: open the outbox in its new directory
RENEW = object()  # ... retire the journal, which grew past its limit, for a new one
WATCH = object()  # ... look out for forked children that end
CHILD_WATCH_SECONDS = 0.25  # how often a process that forked looks for children that ended

class OutboxKeeper:
    """This process's outbox on disk, and the thread that does its slow work."""

    def __init__(
        self,
        pending: Pending,
        wake: threading.Condition,
        *,
        caps: Callable[[], Mapping[Kind, int]],
        on_change: Callable[[], None],
        monotonic: Callable[[], float],
        wall_clock: Callable[[], float],
        memory_budget: int,
        directory: str | None = None,
    ) -> None:
        self.pending = pending
        self._wake = wake  # its lock guards the records and the fields below
        self._caps = caps
        self._changed = on_change
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._memory_budget = memory_budget
        self.directory = directory
        self._warned: set[str] = set()
        self.outbox: Outbox | None = None  # open: any thread may write to it
        self._outbox_failed = False
        self.problem: str | None = None  # why there is no outbox, in one sentence, for status
        self._renewing = False  # a RENEW is queued or being done
        self._to_keep: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.scanned = threading.Event()  # the first look through the outbox is done
        self._thread: threading.Thread | None = None
        self._opening = threading.Lock()  # one thread opens the outbox; others wait for it
        # The first payload is the launch session, made while the extension loads: the keeper
        # opens the outbox for it, so that loading never waits on the disk.
        self._launched = False
        self._adopts = True  # this process looks for what dead owners left (a child does not)
        self._watching_children = False  # this process forked: look for children that ended
        self._dead: set[str] = set()  # owners seen dead while watching

    # -- the sender's calls ------------------------------------------------------------------

    def start(self) -> None:
        """Start the keeper thread, unless it runs (called under the lock)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._keep_loop, name="bugsnag-outbox", daemon=True)
            self._thread.start()

    def move_to(self, directory: str | None) -> None:
        """Use another persistence directory from now on (called under the lock). Payloads
        stored so far stay where they are; new ones go to the new place."""
        moved = directory != self.directory
        self.directory = directory
        if moved and self._thread is not None:
            self.outbox, self._outbox_failed, self.problem = None, False, None
            self.scanned.clear()
            self._to_keep.put(REOPEN)

    def store_now(self, record: Record) -> bool:
        """Append a new record to the journal on the caller's thread. False when the outbox is
        not open yet: then `store_later` hands it to the keeper thread."""
        outbox = self._outbox_now(may_import=False)
        self._launched = True
        if outbox is None:
            return self._outbox_failed
        if (place := self._append(record, outbox)) is not None:
            record.keep_in(outbox, *place)
        return True

    def store_at_once(self) -> None:
        """In a forked child: store every payload on the thread that made it, from the first
        (a child may `os._exit` right after an error), and adopt nothing (the parent does)."""
        self._launched = True
        self._adopts = False

    def watch_children(self) -> None:
        """In a parent that forked: adopt what a child left as soon as it ends, not at the
        next rescan (a pool's workers end without sending what they made, see sender.py)."""
        self._watching_children = True
        self._to_keep.put(WATCH)

    def store_later(self, record: Record) -> None:
        """Queue a record for the keeper thread to store (called under the lock, once the
        record is pending, so that the keeper finds it there)."""
        self._to_keep.put(record)

    def read_back(self, record: Record) -> bytes | str:
        """A spilled or adopted record's body from disk, or why it cannot be had."""
        for _ in range(2):  # a second time if the keeper filed it away from its journal meanwhile
            journal, path, outbox = record.journal, record.path, record.outbox
            try:
                if journal is not None:
                    return journal.read(record.offset, record.size)
                assert outbox is not None and path is not None
                return outbox.read(path)[1]
            except Retired:
                continue
            except FileNotFoundError:
                return "removed from the outbox by someone else"
            except (ValueError, OSError) as error:  # CorruptPayload is a ValueError
                if path is not None and outbox is not None and outbox.set_aside(path):
                    log.warning("Set aside the unreadable outbox file %s (%s).", path.name, error)
                break
        return "unreadable file set aside"

    # -- the keeper ------------------------------------------------------------------------

    def _outbox_now(self, *, may_import: bool) -> Outbox | None:
        """The open outbox, opening it if need be. Opening is a few directory and lock calls,
        cheap enough for any thread; resolving the default directory imports platformdirs,
        which a cell's thread leaves to the keeper until it has been imported."""
        outbox = self.outbox
        if outbox is not None or self._outbox_failed:
            return outbox
        if not may_import and (
            not self._launched or (self.directory is None and "platformdirs" not in sys.modules)
        ):
            return None
        with self._opening:
            if self.outbox is None and not self._outbox_failed:
                self._open()
        return self.outbox

    def _keep_loop(self) -> None:
        next_scan = 0.0
        while True:
            if self.outbox is None and not self._outbox_failed:
                self._outbox_now(may_import=True)
                next_scan = 0.0
            self._keep_all_queued()
            if self._monotonic() >= next_scan or self._a_child_ended():
                self._rescan()
                next_scan = self._monotonic() + RESCAN_SECONDS
            wait = max(0.01, next_scan - self._monotonic())
            if self._watching_children:
                wait = min(wait, CHILD_WATCH_SECONDS)
            try:
                self._keep(self._to_keep.get(timeout=wait))
            except queue.Empty:
                continue

    def _a_child_ended(self) -> bool:
        # A few lock calls: cheap enough to make a few times a second, in a process that forked.
        outbox = self.outbox
        return self._watching_children and outbox is not None and outbox.an_owner_died(self._dead)

    def _keep_all_queued(self) -> None:
        # This process's own payloads reach the disk before, and during, any scan for others'.
        while True:
            try:
                self._keep(self._to_keep.get_nowait())
            except queue.Empty:
                return

    def _keep(self, item: object) -> None:
        if item is RENEW:
            self._renew_journal()
        if not isinstance(item, Record):
            return  # REOPEN: the loop opens the new outbox
        with self._wake:
            outbox = self.outbox
        place = self._append(item, outbox) if outbox is not None and not item.done else None
        if place is None or outbox is None:
            return
        with self._wake:
            late = item.done  # delivered or dropped while it was being written
            if not late:
                item.keep_in(outbox, *place)
                self.pending.now_stored(item)
                if self.pending.memory > self._memory_budget:
                    self.pending.spill(item)
        if late:
            self._settle_entries(place[0], [place[1]])

    def _renew_journal(self) -> None:
        """File the payloads of a journal grown past its limit, each into a file of its own,
        and remove it; a new journal takes the appends meanwhile."""
        outbox = self.outbox
        try:
            if outbox is None or outbox.journal is None:
                return
            old = outbox.renew_journal()
        except OSError as error:
            self._warn_once("journal", f"Could not start a new outbox journal ({error}).")
            return
        finally:
            self._renewing = False
        with self._wake:
            records = self.pending.stored_in(old)
        for record in records:
            body = record.body
            try:
                if body is None:
                    body = old.read(record.offset, record.size)
                path = outbox.write(record.envelope(body), record.ident)
            except (OSError, ValueError) as error:
                self._warn_once(
                    "write-failed", f"Could not write to the outbox in {outbox.root} ({error})."
                )
                return  # the old journal stays, with what could not be filed
            with self._wake:
                late = record.done
                if not late:
                    record.file_at(outbox, path)
            if late:
                outbox.delete(path)  # delivered meanwhile: its journal entry was settled
            else:
                self._settle_entries(old, [record.ident])
        if old.live == 0:
            with contextlib.suppress(OSError):
                old.remove()

    def _open(self) -> None:
        directory = self.directory
        try:
            with forkguard.no_fork:  # outbox, and platformdirs for the default directory
                from .outbox import Outbox, default_directory

                outbox = Outbox(directory or default_directory()).open()
        except Exception as error:
            from ..core.private_files import RefusedDirectory, say_once

            if isinstance(error, RefusedDirectory):
                # The directory's own sentence, said once for all its users (the crash record
                # and the device id meet the same refusal).
                self.problem = str(error)
                say_once(error)
            else:
                where = directory or "the user cache directory"
                self.problem = (
                    f"The outbox in {where} cannot be used ({error}); payloads are kept in "
                    "memory only and are lost if the kernel dies before they are sent."
                )
                log.warning(self.problem)
            with self._wake:
                self._outbox_failed = True
            self._changed()
            return
        with self._wake:
            if directory == self.directory and self.outbox is None:
                self.outbox = outbox
                return
        # Reconfigured meanwhile (the next turn opens the new directory), or already opened.
        outbox.close()

    def _rescan(self) -> None:
        if not self._adopts:
            self.scanned.set()
            return
        with self._wake:
            outbox = self.outbox
            caps = self._caps()
            room = {kind: caps[kind] - self.pending.by_kind(kind) for kind in KINDS}
        try:
            if outbox is not None:
                self._adopt(outbox, outbox.scan(room, self._wall_clock(), self._keep_all_queued))
        except Exception as error:
            log.warning("Could not look through the outbox in %s: %s", outbox and outbox.root, error)
        finally:
            self.scanned.set()

    def _adopt(self, outbox: Outbox, scan: Scan) -> None:
        if scan.set_aside:
            shown = "; ".join(scan.set_aside[:3]) + ("; ..." if len(scan.set_aside) > 3 else "")
            log.warning(
                "Set aside %d unreadable file(s) from the outbox into %s: %s.",
                len(scan.set_aside), outbox.aside, shown,
            )
        removed: list[Record] = []
        with self._wake:
            caps = self._caps()
            for reason, count in (
                ("older than 60 days", scan.expired),
                ("over the stored cap", scan.over_cap),
                ("unreadable file set aside", len(scan.set_aside)),
            ):
                if count:
                    self.pending.stats.dropped[reason] += count
            for stored in scan.adopted:
                removed += self.pending.add(Record.adopted(stored, outbox), caps)
            self._wake.notify_all()
        self.forget(removed)
        if scan.adopted or scan.set_aside or scan.expired or scan.over_cap:
            self._changed()

    # -- disk bookkeeping ------------------------------------------------------------------

    def _append(self, record: Record, outbox: Outbox) -> tuple[Journal, str, int] | None:
        """Append a record's body to the outbox's journal: where it went, or None if it cannot."""
        body = record.body
        if body is None:
            return None
        envelope = record.envelope(body)
        for _ in range(2):  # a second time if the journal was retired meanwhile
            journal = outbox.journal
            if journal is None:
                return None
            try:
                ident, offset = journal.append(envelope)
            except Retired:
                continue
            except OSError as error:
                self._warn_once(
                    "write-failed",
                    f"Could not write to the outbox in {outbox.root} ({error}); kept in memory.",
                )
                return None
            if journal.size > JOURNAL_LIMIT and not self._renewing:
                self._renewing = True
                self._to_keep.put(RENEW)
            return journal, ident, offset
        return None

    def _warn_once(self, what: str, sentence: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(sentence)

    def forget(self, removed: list[Record]) -> None:
        """Settle the journal entries and delete the files of records delivered or dropped."""
        settled: dict[Journal, list[str]] = {}
        for record in removed:
            if record.journal is not None:
                settled.setdefault(record.journal, []).append(record.ident)
            elif record.path is not None and record.outbox is not None:
                record.outbox.delete(record.path)
        for journal, idents in settled.items():
            self._settle_entries(journal, idents)

    def _settle_entries(self, journal: Journal, idents: list[str]) -> None:
        try:
            journal.settle(idents)
        except OSError as error:
            self._warn_once(
                "settle-failed",
                f"Could not mark payloads as sent in {journal.path} ({error}); "
                "a later kernel may send them again.",
            )
