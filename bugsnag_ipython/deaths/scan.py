"""Dead kernels' records, claimed once and settled (reported, then removed) by the dead kernel's
watcher or the next kernel's scan, by the rules of README's "Kernel deaths". A record folder holds
`<token>.record` (locked while its kernel lives), `<token>.faults` (its fault dump),
`<token>.<claimer>.claimed[-again]` (taken by <claimer>, again when the first claimer died),
`<token>.died` (a death note, which the next kernel says) and `set-aside/`."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import private_files
from ..core.basics import log
from ..core.private_files import Refusals, UntrustedFile, is_mine, make_private, owner_alive, read_private
from ..report.cells import notebook_ref
from ..report.events import DeadCell
from ..report.kernel_death import FaultDump, KernelDeath, OomEvidence, parse_fault_dump
from ..report.naming import class_name, message_of
from ..report.payloads import iso8601
from .memory import oom_kills_at
from .place import record_folders
from .record import FAULTS_SUFFIX, MAGIC, RECORD_SUFFIX, SIZE, DamagedRecord, read_record

if TYPE_CHECKING:
    from ..client import Client
    from ..core.config import Configuration
    from .record import CrashRecord

STALE_SECONDS = 3600.0  # a half-made hidden file, or a fault dump without a record, left this long
SET_ASIDE = "set-aside"
# `<token>.record`, or `<token>.<claimer>.claimed[-again]`.
_CLAIMABLE = re.compile(r"[0-9a-f]{12}\.(record|(?P<claimer>[0-9a-f]{12})\.claimed(?P<again>-again)?)")
# Errors of the moment, not of the file: it is looked at again by a later scan.
_PASSING = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR, errno.EAGAIN}
MAX_FAULT_BYTES = 1024 * 1024  # of a fault dump, read
MAX_NOTE_BYTES = 4096
RECENT_SECONDS = 3600.0  # a death older than this before the kernel started is not said
# What became of a report; DROPPED (not a death that counts, or dropped by on_error) leaves no note.
REPORTED, KEPT, NOT_SENT, REFUSED, DROPPED = "reported", "kept", "not sent", "refused", "dropped"
_OUTCOMES = {
    REFUSED: "not reported (the endpoint refused it).",
    REPORTED: "reported.",
    KEPT: "kept to be reported later (the endpoint could not be reached).",
    NOT_SENT: "not reported (its release stage is not enabled).",
}


def faults_of(path: Path) -> Path:
    """The fault dump of the record at `path`, claimed or not: every name here starts with its token."""
    return path.with_name(f"{path.name[:12]}{FAULTS_SUFFIX}")


def set_aside(path: Path, error: BaseException | str, refusals: Refusals) -> None:
    """Move the record at `path` that cannot be used, with its fault dump, into its folder's
    `set-aside/` (else remove it), say so in one log line and count it in `refusals`."""
    why = str(error)  # a string, UntrustedFile or DamagedRecord: the reason in a few words
    if isinstance(error, OSError) and error.strerror:
        why = error.strerror
    elif not isinstance(error, (str, UntrustedFile, DamagedRecord)):
        why = f"{class_name(error)}: {message_of(error)}"
    folder = path.parent / SET_ASIDE
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}"
    moved: dict[Path, bool] = {}  # a file gone already is not in it
    for each in (path, faults_of(path)):
        try:
            make_private(folder, root=False)
            os.rename(each, folder / f"{stamp}-{each.name}")  # a link moves, not its target
            moved[each] = True
        except FileNotFoundError:
            pass
        except OSError:  # not kept for a look, then, but never tried again either
            moved[each] = False
            with contextlib.suppress(OSError):
                each.unlink()
    if path not in moved:
        return
    refusals.set_aside += 1
    refusals.folder = str(folder)
    if moved[path]:
        log.warning("Set aside the crash record %s of an earlier kernel into %s: %s.", path.name, folder, why)
    else:
        log.warning("Removed the crash record %s of an earlier kernel, which could not be set aside "
                    "into %s: %s.", path.name, folder, why)


def claim_dead(folder: Path, own_token: str, refusals: Refusals, live: Path) -> list[Path]:
    """Claim the records of dead kernels in `folder` for the kernel `own_token`, whose own record
    is in the folder `live`; what cannot be used is set aside (counted in `refusals`), and what a
    kernel killed while making or removing a file left goes an hour on. Raises OSError when the
    folder cannot be looked at."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    make_private(folder, create=False, root=False)  # never a folder another user could write to
    claimed = []
    tokens = {name[:12] for name in names if _CLAIMABLE.fullmatch(name)}
    for name in names:
        found = _CLAIMABLE.fullmatch(name)
        if found is None:
            if (name.startswith(".") and name.endswith(".tmp")) or (
                name.endswith(FAULTS_SUFFIX) and name[:12] not in tokens
            ):
                with contextlib.suppress(OSError):  # left an hour on by a kernel killed mid-write
                    facts = os.lstat(folder / name)
                    if is_mine(facts) and time.time() - facts.st_mtime > STALE_SECONDS:
                        os.unlink(folder / name)
            continue
        token, claimer = name[:12], found["claimer"]
        if token == own_token or (claimer and (owner_alive(folder / f"{claimer}{RECORD_SUFFIX}")
                                               or owner_alive(live / f"{claimer}{RECORD_SUFFIX}"))):
            continue  # this kernel's, or its claimer (this kernel too) is reporting it now
        mine = folder / f"{token}.{own_token}.claimed{'-again' if claimer else ''}"
        if _claim(folder / name, mine, refusals, again=bool(found["again"])):
            claimed.append(mine)
    return claimed


def _claim(path: Path, mine: Path, refusals: Refusals, *, again: bool) -> bool:
    """Rename the record at `path` to `mine` if its owner is gone; whether it is now ours."""
    fd = None
    try:
        fd = private_files.lock_if_ownerless(path)
        if fd is None:
            return False  # a live kernel's, or a claim its watcher is reporting now
        magic = os.pread(fd, len(MAGIC), 0)
        if not magic.startswith(MAGIC[:7]):  # b"BSGKREC": every version's magic
            raise DamagedRecord("it is not a crash record of any version")
        if magic != MAGIC or os.fstat(fd).st_size != SIZE:
            return False  # another version's, with its fault file: that version reports it
        if again:
            set_aside(path, "two kernels died while reporting it", refusals)
            return False
        os.rename(path, mine)  # the claim: another kernel's rename of it now fails
        return True
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as error:  # UntrustedFile and DamagedRecord are ValueErrors
        if not (isinstance(error, OSError) and error.errno in _PASSING):
            set_aside(path, error, refusals)
        return False
    finally:
        if fd is not None:
            os.close(fd)  # lets go of the lock taken here


def claim_locked(path: Path, fd: int, claimer: str) -> Path | None:
    """Claim the record at `path` for the watcher holding its lock on `fd`; None if a scan took it first."""
    mine = path.with_name(f"{path.name.removesuffix(RECORD_SUFFIX)}.{claimer}.claimed")
    try:
        if not os.path.samestat(os.fstat(fd), os.lstat(path)):
            return None
        os.rename(path, mine)
    except FileNotFoundError:
        return None
    return mine


def settle(claimed: Path, config: Configuration, send: Callable[[KernelDeath], str | None],
           refusals: Refusals) -> dict[str, Any] | None:
    """Report the death in the record `claimed` with `send` (its outcome; None: neither sent nor
    kept, and the record stays claimed), then remove it; the death's note, or None."""
    try:
        death = death_of(claimed, config)
        outcome = DROPPED if death is None else send(death)
    except Exception as error:  # whatever the record holds: it alone is set aside
        set_aside(claimed, error, refusals)
        return None
    if outcome is None:
        return None
    for path in (claimed, faults_of(claimed)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if death is None or outcome == DROPPED:
        return None
    cause = "out of memory" if death.out_of_memory else "killed"
    if death.fault is not None:
        cause = death.fault.signal or death.fault.description.lower()
    cell = death.cell  # the death note, as it is kept on disk
    return {"diedAt": death.died_at, "running": cell is not None,
            "executionCount": cell.execution_count if cell else None, "cause": cause, "outcome": outcome}


def report_dead_kernels(client: Client, directory: str, own: CrashRecord | None) -> list[dict[str, Any]]:
    """Claim and report the dead kernels' records under `directory`; the notes of the deaths reported."""
    if own is None or own.closed:
        return []  # a claim needs a live record of this kernel's to be seen alive
    notes = []

    def send(death: KernelDeath) -> str:
        return REPORTED if client.notify_kernel_death(death) else DROPPED

    for folder in record_folders(directory):
        try:
            claims = claim_dead(folder, own.token, client.crash_records, own.path.parent)
        except OSError as error:
            log.info("Crash records in %s could not be looked at (%s).", folder, error)
            continue
        for claimed in claims:
            note = settle(claimed, client.config, send, client.crash_records)
            if note is not None:
                notes.append(note)
    return notes


def death_of(claimed: Path, config: Configuration) -> KernelDeath | None:
    """The death to report from a claimed record, or None when the rules say it is not one
    (the reporter's `config` fills in what the record lacks); raises UntrustedFile or OSError."""
    contents = read_record(read_private(claimed, SIZE))
    fault: FaultDump | None = None
    dumped_at: float | None = None  # when the fault dump was written
    with (contextlib.suppress(FileNotFoundError),
          open(private_files.open_private(faults_of(claimed)), "rb") as file):
        dump = file.read(MAX_FAULT_BYTES).decode("utf-8", "replace")  # the crashing thread comes first
        fault, dumped_at = parse_fault_dump(dump), os.fstat(file.fileno()).st_mtime if dump else None
    if contents.ended or not contents.sending:
        return None
    if fault is None and contents.cell is None:
        log.info("An earlier kernel (pid %d) ended while idle without a fault; not reported as a "
                 "crash.", contents.pid)
        return None
    facts, vitals = contents.facts, contents.vitals
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
    memory_seen: dict[str, Any] = {}
    if vitals is not None:
        seen = {"residentBytes": vitals.rss, "peakResidentBytes": vitals.peak_rss,
                "cgroupUsageBytes": vitals.cgroup_usage, "cgroupLimitBytes": vitals.cgroup_limit}
        memory_seen = {key: value for key, value in seen.items() if value >= 0}
        memory_seen["at"] = iso8601(vitals.seen_wall)
    oom, baseline = None, facts.get("oomKill")  # the cgroup's OOM-kill count at its start, against now
    if isinstance(baseline, dict) and isinstance(baseline.get("count"), int):
        after, version = oom_kills_at(_text(baseline.get("file")) or ""), baseline.get("cgroupVersion")
        if after is not None:
            oom = OomEvidence(baseline["count"], after, version if isinstance(version, int) else 0)
    project_root = _text(facts.get("projectRoot")) or config.project_root
    cells = facts.get("cells")
    return KernelDeath(
        pid=contents.pid, died_at=died_at, launched_at=contents.launched_wall, cell=cell, fault=fault,
        oom=oom, memory=memory_seen, facts=facts, session=session,
        notebook=notebook_ref(_text(facts.get("notebook")), project_root),
        send_code=facts.get("sendCode") is not False and config.send_code,
        cells=cells if isinstance(cells, dict) else {},
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def take_notes(folder: Path, own_token: str, since: float, reported: list[dict[str, Any]]) -> str | None:
    """Take every death note in `folder`; what follows "Previous kernel " for the newest death since
    `since` (seconds since the epoch) of those and of the notes `reported` here, if any."""
    said = [_said(note) for note in reported]
    for path in folder.glob("*.died"):
        taken = folder / f".{path.name}.{own_token}.tmp"
        with contextlib.suppress(OSError, ValueError):  # UntrustedFile and bad JSON are ValueErrors
            os.rename(path, taken)  # another kernel's rename of it now fails
            said.append(_said(json.loads(read_private(taken, MAX_NOTE_BYTES))))
        with contextlib.suppress(OSError):
            taken.unlink()
    recent = [note for note in said if note is not None and note[0] >= since]
    return max(recent)[1] if recent else None


def _said(found: Any) -> tuple[float, str] | None:
    """A note's death and its words: "died running In [14] (out of memory); reported."."""
    if not isinstance(found, dict):
        return None
    died_at, count, cause = found.get("diedAt"), found.get("executionCount"), found.get("cause")
    outcome = found.get("outcome")
    if (not isinstance(died_at, (int, float)) or not isinstance(cause, str) or len(cause) > 40
            or outcome not in _OUTCOMES or not (count is None or isinstance(count, int))):
        return None
    where = ""
    if found.get("running") is True:
        where = f" running In [{count}]" if count else " running a cell"
    return float(died_at), f"died{where} ({cause}); {_OUTCOMES[outcome]}"
