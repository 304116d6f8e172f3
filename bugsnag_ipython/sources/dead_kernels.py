"""Dead kernels' records: found, claimed once, read, reported.

They are in the persistence directory's `kernels/` and in its runtime folder (record_place.py),
each folder laid out alike:

    kernels/<token>.record                   a kernel's crash record, flock()ed while it lives
    kernels/<token>.faults                   its fault dump (faulthandler's file)
    kernels/<token>.<claimer>.claimed        a dead kernel's record, taken by the kernel <claimer>
    kernels/<token>.<claimer>.claimed-again  the same, taken again: its first claimer died
    kernels/set-aside/                       what could not be used, kept for a look

A record whose lock nobody holds belongs to a kernel that is gone. The next kernel to look
claims it by renaming it to a name of its own, as the outbox claims a dead owner's journal:
rename is atomic, so when two kernels start at once each record goes to exactly one of them.

Each record is dealt with on its own, by the rule every file under the persistence directory
follows (core/private_files.py):
- a file that fails the rule (a link, a FIFO, another user's, not a record of any version) is
  set aside with its fault file, with one log line, and counted: never read, never waited on;
- a record of another format version (another magic, another size) is left where it is, with
  its fault file: not claimed, not reported, not deleted (the version that wrote it reports it);
- any error while reading or reporting a claimed record sets that one aside, and the others
  are still reported;
- a claim whose claimer died is claimed once more (the claimer may have died of something
  else); one claimed again whose second claimer died too is set aside, not tried a third time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.private_files import (
    UntrustedFile,
    make_private,
    open_private,
    read_descriptor,
    read_private,
)
from ..report.cells import notebook_ref
from ..report.kernel_death import DeadCell, FaultDump, KernelDeath, OomEvidence, parse_fault_dump
from ..report.naming import class_name, message_of
from ..report.payloads import iso8601
from . import memory
from .crash_record import (
    DIRECTORY,
    FAULTS_SUFFIX,
    MAGIC,
    RECORD_SUFFIX,
    SIZE,
    CrashRecord,
    DamagedRecord,
    RecordContents,
    Vitals,
    read_record,
)
from .death_notes import REPORTED, DeathNote, note_of
from .record_place import record_folders

if TYPE_CHECKING:
    from ..client import Client
    from ..core.config import Configuration

log = logging.getLogger("bugsnag_ipython")

STALE_SECONDS = 3600.0  # a half-made record or a fault dump without a record, left this long
MAX_FAULT_BYTES = 1024 * 1024  # of a fault dump, read; the crashing thread comes first
MAGIC_FAMILY = MAGIC[:7]  # b"BSGKREC": every version's magic, the last byte its number
SET_ASIDE = "set-aside"
_RECORD = re.compile(r"(?P<token>[0-9a-f]{12})\.record")
_CLAIMED = re.compile(r"(?P<token>[0-9a-f]{12})\.(?P<claimer>[0-9a-f]{12})\.claimed(?P<again>-again)?")
# Errors of the moment, not of the file: it is looked at again by a later scan.
_PASSING = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR, errno.EAGAIN}


@dataclass(frozen=True)
class Claimed:
    """A dead kernel's record, now this kernel's to report and remove."""

    token: str
    path: Path
    faults: Path

    def read(self) -> tuple[bytes, str, float | None]:
        """The record's bytes, the fault dump's text and when it was written (None: no dump);
        raises UntrustedFile (a file that fails the rule) or OSError."""
        data = read_private(self.path, SIZE)
        try:
            fd = open_private(self.faults)
        except FileNotFoundError:
            return data, "", None
        try:
            dump = read_descriptor(fd, MAX_FAULT_BYTES, cut=True)
            written = os.fstat(fd).st_mtime if dump else None
        finally:
            os.close(fd)
        return data, dump.decode("utf-8", "replace"), written

    def remove(self) -> None:
        for path in (self.path, self.faults):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class SetAside:
    """Where the files of one record folder that cannot be used go: `set-aside/` in it (the
    same file system, so the move is a rename), each record with its fault file, one log line
    each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / SET_ASIDE
        self.moved: list[str] = []  # "name: why"

    def put(self, path: Path, why: str, faults: Path | None = None) -> None:
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        outcome = None  # of the record itself: "kept", "removed", or None when it was gone
        for each in (path, faults):
            if each is None:
                continue
            try:
                make_private(self.folder, root=False)
                os.rename(each, self.folder / f"{stamp}-{each.name}")  # a link moves, not its target
                done = "kept"
            except FileNotFoundError:
                continue
            except OSError:
                done = "removed"  # not kept for a look, then, but never tried again either
                with contextlib.suppress(OSError):
                    each.unlink()
            if each == path:
                outcome = done
        if outcome is None:
            return
        self.moved.append(f"{path.name}: {why}")
        if outcome == "kept":
            log.warning("Set aside the crash record %s of an earlier kernel into %s: %s.",
                        path.name, self.folder, why)
        else:
            log.warning("Removed the crash record %s of an earlier kernel, which could not be set "
                        "aside into %s: %s.", path.name, self.folder, why)


def _take(path: Path) -> int | None:
    """A descriptor on the record at `path`, opened by the rule and locked here: its kernel is
    gone. None when a live kernel holds its lock, or when the lock cannot be had (a file
    system without locks: no telling, so it is left alone). Raises UntrustedFile or OSError."""
    fd = open_private(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def alive(path: Path) -> bool:
    """Whether a live kernel holds the lock on the record at `path` (False if it is gone, or is
    no file a kernel could hold: a link, a FIFO)."""
    try:
        fd = _take(path)
    except (FileNotFoundError, UntrustedFile):
        return False
    except OSError:
        return True  # cannot tell: leave it alone
    if fd is None:
        return True
    os.close(fd)  # closing lets go of a lock taken here
    return False


def _of_this_version(fd: int) -> bool:
    """Whether the record open at `fd` is of this version (False: of another one, left to
    it); raises DamagedRecord for a file that is no crash record of any version."""
    magic = os.pread(fd, len(MAGIC), 0)
    if not magic.startswith(MAGIC_FAMILY):
        raise DamagedRecord("it is not a crash record of any version")
    return magic == MAGIC and os.fstat(fd).st_size == SIZE


def why(error: BaseException) -> str:
    if isinstance(error, (UntrustedFile, DamagedRecord)):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{class_name(error)}: {message_of(error)}"


def claim_dead(root: str | os.PathLike[str], own_token: str, now: float | None = None, *,
               aside: SetAside | None = None, live: Path | None = None) -> list[Claimed]:
    """Claim the records of dead kernels under `root` for the kernel `own_token`, whose own
    record is in the folder `live` (by default `root`'s); files that cannot be used go to
    `aside` (by default the folder's own)."""
    folder = Path(root).expanduser() / DIRECTORY
    aside = aside or SetAside(folder)
    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    make_private(folder, create=False, root=False)  # never a folder another user could write to
    claimed: list[Claimed] = []
    records = set()
    for name in names:
        path = folder / name
        record = _RECORD.fullmatch(name)
        taken = _CLAIMED.fullmatch(name)
        if record is not None:
            token = record["token"]
            records.add(token)
            if token == own_token:
                continue
            mine = folder / f"{token}.{own_token}.claimed"
        elif taken is not None:
            token = taken["token"]
            records.add(token)
            if taken["claimer"] == own_token:
                claimed.append(Claimed(token, path, folder / f"{token}{FAULTS_SUFFIX}"))
                continue  # left by an earlier scan of this kernel
            claimer = f"{taken['claimer']}{RECORD_SUFFIX}"
            if alive(folder / claimer) or (live not in (None, folder) and alive(live / claimer)):
                continue  # its claimer is reporting it now
            # A claim whose lock is held (below) is the dead kernel's watcher's: it reports it now.
            mine = folder / f"{token}.{own_token}.claimed-again"
        else:
            continue
        faults = folder / f"{token}{FAULTS_SUFFIX}"
        try:
            fd = _take(path)
        except FileNotFoundError:
            continue
        except OSError as error:
            if error.errno not in _PASSING:
                aside.put(path, why(error), faults)
            continue
        except UntrustedFile as error:
            aside.put(path, why(error), faults)
            continue
        if fd is None:
            continue  # a live kernel's, or a claim its watcher is reporting now
        try:
            if not _of_this_version(fd):
                continue  # another version's, with its fault file: that version reports it
            if taken is not None and taken["again"]:
                aside.put(path, "two kernels died while reporting it", faults)
                continue
            os.rename(path, mine)  # the claim: another kernel's rename of it now fails
        except FileNotFoundError:
            continue
        except (OSError, DamagedRecord) as error:
            aside.put(path, why(error), faults)
            continue
        finally:
            os.close(fd)  # lets go of the lock taken here
        claimed.append(Claimed(token, mine, faults))
    for name in names:  # leftovers of kernels that died while making or removing a record
        if (name.startswith(".") and name.endswith(".tmp")) or (
            name.endswith(FAULTS_SUFFIX) and name[: -len(FAULTS_SUFFIX)] not in records
        ):
            with contextlib.suppress(OSError):
                if now - os.lstat(folder / name).st_mtime > STALE_SECONDS:
                    (folder / name).unlink()
    return claimed


def claim_locked(path: Path, fd: int, claimer: str) -> Claimed | None:
    """Claim the record at `path`, whose lock this process holds on `fd`, for `claimer` (its
    kernel's watcher): the lock goes with the renamed file, and a scan leaves a claim whose lock
    is held alone. None when `path` no longer names that record (a scan took it first)."""
    found = _RECORD.fullmatch(path.name)
    mine = path.with_name(f"{found['token']}.{claimer}.claimed") if found else path
    try:
        if found is None or not os.path.samestat(os.fstat(fd), os.lstat(path)):
            return None
        os.rename(path, mine)
    except FileNotFoundError:
        return None
    return Claimed(found["token"], mine, path.with_name(f"{found['token']}{FAULTS_SUFFIX}"))


def report_dead_kernels(client: Client, directory: str, own: CrashRecord | None,
                        told: list[DeathNote] | None = None) -> int:
    """Claim the records of dead kernels under `directory` and report each death that counts,
    each record on its own: one that cannot be read or reported is set aside, and counted in
    `client.crash_records`. Returns how many events were handed over; the note of each is
    added to `told`."""
    if own is None or own.closed:
        return 0  # a claim needs a live record of this kernel's to be seen alive
    reported = 0
    for folder in record_folders(directory):
        aside = SetAside(folder)
        try:
            claims = claim_dead(folder.parent, own.token, aside=aside, live=own.path.parent)
        except OSError as error:
            log.info("Crash records in %s could not be looked at (%s).", folder, error)
            continue
        try:
            for claimed in claims:
                try:
                    death = death_of(claimed, client.config)
                    if death is not None and client.notify_kernel_death(death):
                        reported += 1
                        if told is not None:
                            told.append(note_of(death, REPORTED))
                except Exception as error:  # whatever the record holds: it alone is set aside
                    aside.put(claimed.path, why(error), claimed.faults)
                    continue
                claimed.remove()
        finally:
            if aside.moved:
                client.crash_records.set_aside += len(aside.moved)
                client.crash_records.folder = str(aside.folder)
    return reported


def death_of(claimed: Claimed, config: Configuration) -> KernelDeath | None:
    """The death to report from a claimed record, or None when the rules say it is not one
    (the reporter's `config` fills in what the record lacks)."""
    data, dump, dumped_at = claimed.read()
    contents = read_record(data)
    fault = parse_fault_dump(dump) if dump else None
    if contents.ended or not contents.sending:
        return None
    if fault is None and contents.cell is None:
        log.info("An earlier kernel (pid %d) ended while idle without a fault; not reported as a "
                 "crash.", contents.pid)
        return None
    return _synthesize(contents, fault, dumped_at, config)


def _synthesize(contents: RecordContents, fault: FaultDump | None, dumped_at: float | None,
                config: Configuration) -> KernelDeath:
    facts = contents.facts
    vitals = contents.vitals
    # When it died: when faulthandler wrote, else when it was last seen alive.
    died_at = dumped_at or (vitals.seen_wall if vitals else contents.launched_wall)
    cell = None
    if contents.cell is not None:
        # The dead kernel's monotonic clock on its wall clock, from its launch.
        started = contents.cell.started_monotonic + contents.launched_wall - contents.launched_monotonic
        died_at = max(died_at, started)
        cell = DeadCell(contents.cell.execution_count, contents.cell.cell_id, contents.cell.source,
                        round((died_at - started) * 1000))
    session = None
    if contents.session is not None:
        session = {"id": contents.session.id, "startedAt": iso8601(contents.session.started_at),
                   "events": {"handled": contents.session.handled,
                              "unhandled": contents.session.unhandled + 1}}
    project_root = _text(facts.get("projectRoot")) or config.project_root
    cells = facts.get("cells")
    return KernelDeath(
        pid=contents.pid,
        died_at=died_at,
        launched_at=contents.launched_wall,
        cell=cell,
        fault=fault,
        oom=_oom_evidence(facts.get("oomKill")),
        memory=_memory_seen(contents.vitals),
        facts=facts,
        session=session,
        notebook=notebook_ref(_text(facts.get("notebook")), project_root),
        send_code=facts.get("sendCode") is not False and config.send_code,
        cells=cells if isinstance(cells, dict) else {},
    )


def _oom_evidence(baseline: Any) -> OomEvidence | None:
    """The dead kernel's cgroup OOM-kill count at its start, against the count now."""
    if not isinstance(baseline, dict) or not isinstance(baseline.get("count"), int):
        return None
    after = memory.oom_kills_at(_text(baseline.get("file")) or "")
    if after is None:
        return None
    version = baseline.get("cgroupVersion")
    return OomEvidence(baseline["count"], after, version if isinstance(version, int) else 0)


def _memory_seen(vitals: Vitals | None) -> dict[str, Any]:
    if vitals is None:
        return {}
    seen: dict[str, Any] = {}
    for key, value in (("residentBytes", vitals.rss), ("peakResidentBytes", vitals.peak_rss),
                       ("cgroupUsageBytes", vitals.cgroup_usage), ("cgroupLimitBytes", vitals.cgroup_limit)):
        if value >= 0:
            seen[key] = value
    seen["at"] = iso8601(vitals.seen_wall)
    return seen


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
