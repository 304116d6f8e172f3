"""Dead kernels' records: found, claimed once, read, reported.

They are in the persistence directory's `kernels/` and in its runtime folder (record_place.py),
each folder laid out alike:

    kernels/<token>.record             a kernel's crash record, flock()ed while it lives
    kernels/<token>.faults             its fault dump (faulthandler's file)
    kernels/<token>.<claimer>.claimed  a dead kernel's record, taken by the kernel <claimer>

A record whose lock nobody holds belongs to a kernel that is gone. The next kernel to look
claims it by renaming it to a name of its own, as the outbox claims a dead owner's journal:
rename is atomic, so when two kernels start at once each record goes to exactly one of them.
A claim whose claimer died in turn is claimed again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report.cells import notebook_ref
from ..report.kernel_death import DeadCell, FaultDump, KernelDeath, OomEvidence, parse_fault_dump
from ..report.payloads import iso8601
from . import memory
from .crash_record import (
    DIRECTORY,
    FAULTS_SUFFIX,
    RECORD_SUFFIX,
    CrashRecord,
    DamagedRecord,
    RecordContents,
    Vitals,
    read_record,
)
from .record_place import record_folders

if TYPE_CHECKING:
    from ..client import Client

log = logging.getLogger("bugsnag_ipython")

STALE_SECONDS = 3600.0  # a half-made record or a fault dump without a record, left this long
MAX_FAULT_BYTES = 1024 * 1024
_RECORD = re.compile(r"(?P<token>[0-9a-f]{12})\.record")
_CLAIMED = re.compile(r"(?P<token>[0-9a-f]{12})\.(?P<claimer>[0-9a-f]{12})\.claimed")


@dataclass(frozen=True)
class Claimed:
    """A dead kernel's record, now this kernel's to report and remove."""

    token: str
    path: Path
    faults: Path

    def read(self) -> tuple[bytes, str, float | None]:
        """The record's bytes, the fault dump's text and when it was written (None: no dump)."""
        data = self.path.read_bytes()
        try:
            with self.faults.open("rb") as file:
                dump = file.read(MAX_FAULT_BYTES)
                written = os.fstat(file.fileno()).st_mtime if dump else None
        except FileNotFoundError:
            dump, written = b"", None
        return data, dump.decode("utf-8", "replace"), written

    def remove(self) -> None:
        for path in (self.path, self.faults):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def alive(path: Path) -> bool:
    """Whether a live kernel holds the lock on the record at `path` (False if it is gone)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: leave it alone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing lets go of a lock taken here
    return False


def claim_dead(root: str | os.PathLike[str], own_token: str, now: float | None = None, *,
               live: Path | None = None) -> list[Claimed]:
    """Claim the records of dead kernels under `root` for the kernel `own_token`, whose own
    record is in the folder `live` (by default `root`'s)."""
    folder = Path(root).expanduser() / DIRECTORY
    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    claimed: list[Claimed] = []
    records = set()
    for name in names:
        path = folder / name
        record = _RECORD.fullmatch(name)
        taken = _CLAIMED.fullmatch(name)
        if record is not None:
            token = record["token"]
            records.add(token)
            if token == own_token or alive(path):
                continue
        elif taken is not None:
            token = taken["token"]
            records.add(token)
            if taken["claimer"] == own_token:
                claimed.append(Claimed(token, path, folder / f"{token}{FAULTS_SUFFIX}"))
                continue  # left by an earlier scan of this kernel
            claimer = f"{taken['claimer']}{RECORD_SUFFIX}"
            if alive(folder / claimer) or (live not in (None, folder) and alive(live / claimer)):
                continue  # its claimer is reporting it now
        else:
            continue
        mine = folder / f"{token}.{own_token}.claimed"
        try:
            os.rename(path, mine)  # the claim: another kernel's rename of it now fails
        except FileNotFoundError:
            continue
        claimed.append(Claimed(token, mine, folder / f"{token}{FAULTS_SUFFIX}"))
    for name in names:  # leftovers of kernels that died while making or removing a record
        if (name.startswith(".") and name.endswith(".tmp")) or (
            name.endswith(FAULTS_SUFFIX) and name[: -len(FAULTS_SUFFIX)] not in records
        ):
            with contextlib.suppress(OSError):
                if now - (folder / name).stat().st_mtime > STALE_SECONDS:
                    (folder / name).unlink()
    return claimed


def report_dead_kernels(client: Client, directory: str, own: CrashRecord | None) -> int:
    """Claim the records of dead kernels under `directory` and report each death that counts;
    returns how many events were handed over."""
    if own is None or own.closed:
        return 0  # a claim needs a live record of this kernel's to be seen alive
    reported = 0
    for claimed in _claims(directory, own):
        try:
            death = _death_of(claimed, client)
        except (OSError, DamagedRecord) as error:
            log.info("A crash record of an earlier kernel was unreadable and is removed (%s).", error)
            claimed.remove()
            continue
        if death is not None and client.notify_kernel_death(death):
            reported += 1
        claimed.remove()
    return reported


def _claims(directory: str, own: CrashRecord) -> Iterator[Claimed]:
    """Claims of dead kernels' records in each folder a record of `directory` may be in: its
    `kernels/` and its runtime folder (record_place.py), each `<root>/kernels`."""
    for folder in record_folders(directory):
        try:
            claims = claim_dead(folder.parent, own.token, live=own.path.parent)
        except OSError as error:
            log.info("Crash records in %s could not be looked at (%s).", folder, error)
            continue
        yield from claims


def _death_of(claimed: Claimed, client: Client) -> KernelDeath | None:
    """The death to report from a claimed record, or None when the rules say it is not one."""
    data, dump, dumped_at = claimed.read()
    contents = read_record(data)
    fault = parse_fault_dump(dump) if dump else None
    if contents.ended or not contents.sending:
        return None
    if fault is None and contents.cell is None:
        log.info("An earlier kernel (pid %d) ended while idle without a fault; not reported as a "
                 "crash.", contents.pid)
        return None
    return _synthesize(contents, fault, dumped_at, client)


def _synthesize(contents: RecordContents, fault: FaultDump | None, dumped_at: float | None,
                client: Client) -> KernelDeath:
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
    config = client.config
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
