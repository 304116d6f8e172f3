"""From a claimed record to a reported death, by the rules of README's "Kernel deaths": a normal
end is never reported; a fatal signal always; a kernel gone without a trace only if a cell ran;
nothing of a kernel that sent nothing. The watcher and the next kernel's scan both settle a
claimed record here; the death's note, `kernels/<token>.died`, is what the next kernel says."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.basics import log
from ..core.private_files import UntrustedFile, open_private, read_private, write_private
from ..report.cells import notebook_ref
from ..report.kernel_death import DeadCell, FaultDump, KernelDeath, OomEvidence, parse_fault_dump
from ..report.payloads import iso8601
from . import memory
from .claims import Claimed, SetAside, claim_dead
from .place import record_folders
from .record import SIZE, read_record

if TYPE_CHECKING:
    from ..client import Client
    from ..core.config import Configuration
    from .record import CrashRecord

MAX_FAULT_BYTES = 1024 * 1024  # of a fault dump, read
MAX_NOTE_BYTES = 4096
RECENT_SECONDS = 3600.0  # a death older than this before the kernel started is not said
# What became of a report; DROPPED (not a death that counts, or an on_error callback dropped
# it) leaves no note.
REPORTED, KEPT, NOT_SENT, REFUSED, DROPPED = "reported", "kept", "not sent", "refused", "dropped"
_OUTCOMES = {
    REFUSED: "not reported (the endpoint refused it).",
    REPORTED: "reported.",
    KEPT: "kept to be reported later (the endpoint could not be reached).",
    NOT_SENT: "not reported (its release stage is not enabled).",
}
_NOTE = re.compile(r"[0-9a-f]{12}\.died")

# Sends a death: its outcome, or None when it could be neither sent nor kept.
Send = Callable[[KernelDeath], "str | None"]


def settle(claimed: Claimed, config: Configuration, send: Send, aside: SetAside) -> dict[str, Any] | None:
    """Report the death in `claimed` with `send`, then remove the record; the death's note, or
    None when there is none to tell. A record that makes anything fail is set aside; one that
    could be neither sent nor kept stays claimed, for a later scan."""
    try:
        death = death_of(claimed, config)
        outcome = DROPPED if death is None else send(death)
    except Exception as error:  # whatever the record holds: it alone is set aside
        aside.put(claimed.path, claimed.faults, error)
        return None
    if outcome is None:
        return None
    for path in (claimed.path, claimed.faults):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return None if death is None or outcome == DROPPED else note_of(death, outcome)


def report_dead_kernels(client: Client, directory: str, own: CrashRecord | None) -> list[dict[str, Any]]:
    """Claim the records of dead kernels under `directory` and report each death that counts
    through `client`, each record on its own: one that cannot be read or reported is set aside,
    and counted in `client.crash_records`. The notes of the deaths reported."""
    if own is None or own.closed:
        return []  # a claim needs a live record of this kernel's to be seen alive
    notes = []

    def send(death: KernelDeath) -> str:
        return REPORTED if client.notify_kernel_death(death) else DROPPED

    for folder in record_folders(directory):
        aside = SetAside(folder)
        try:
            claims = claim_dead(folder, own.token, aside, own.path.parent)
        except OSError as error:
            log.info("Crash records in %s could not be looked at (%s).", folder, error)
            continue
        for claimed in claims:
            note = settle(claimed, client.config, send, aside)
            if note is not None:
                notes.append(note)
        if aside.count:
            client.crash_records.set_aside += aside.count
            client.crash_records.folder = str(aside.folder)
    return notes


def death_of(claimed: Claimed, config: Configuration) -> KernelDeath | None:
    """The death to report from a claimed record, or None when the rules say it is not one
    (the reporter's `config` fills in what the record lacks); raises UntrustedFile or OSError."""
    contents = read_record(read_private(claimed.path, SIZE))
    fault, dumped_at = _fault_dump(claimed.faults)
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
    project_root = _text(facts.get("projectRoot")) or config.project_root
    cells = facts.get("cells")
    return KernelDeath(
        pid=contents.pid, died_at=died_at, launched_at=contents.launched_wall, cell=cell, fault=fault,
        oom=_oom_evidence(facts.get("oomKill")), memory=memory_seen, facts=facts, session=session,
        notebook=notebook_ref(_text(facts.get("notebook")), project_root),
        send_code=facts.get("sendCode") is not False and config.send_code,
        cells=cells if isinstance(cells, dict) else {},
    )


def _fault_dump(path: Path) -> tuple[FaultDump | None, float | None]:
    """The fault in the dump at `path`, and when the dump was written (None: no dump)."""
    try:
        fd = open_private(path)
    except FileNotFoundError:
        return None, None
    with open(fd, "rb") as file:
        dump = file.read(MAX_FAULT_BYTES).decode("utf-8", "replace")  # the crashing thread comes first
        return parse_fault_dump(dump), os.fstat(fd).st_mtime if dump else None


def _oom_evidence(baseline: Any) -> OomEvidence | None:
    """The dead kernel's cgroup OOM-kill count at its start, against the count now."""
    if not isinstance(baseline, dict) or not isinstance(baseline.get("count"), int):
        return None
    after = memory.oom_kills_at(_text(baseline.get("file")) or "")
    if after is None:
        return None
    version = baseline.get("cgroupVersion")
    return OomEvidence(baseline["count"], after, version if isinstance(version, int) else 0)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def note_of(death: KernelDeath, outcome: str) -> dict[str, Any]:
    """The death note of `death`, whose report's outcome was `outcome`, as it is kept on disk."""
    fault, cell = death.fault, death.cell
    cause = "out of memory" if death.out_of_memory else "killed"
    if fault is not None:
        cause = fault.signal or fault.description.lower()
    return {"diedAt": death.died_at, "running": cell is not None,
            "executionCount": cell.execution_count if cell else None, "cause": cause, "outcome": outcome}


def leave_note(path: Path, note: dict[str, Any]) -> None:
    """Never raises: a note that cannot be written is only not shown."""
    with contextlib.suppress(OSError, UntrustedFile):
        write_private(path, json.dumps(note).encode())


def take_notes(folder: Path, own_token: str, since: float, reported: list[dict[str, Any]]) -> str | None:
    """Take every death note in `folder` for the kernel `own_token`; what follows "Previous
    kernel " for the newest death since `since` (seconds since the epoch) of those and of the
    notes `reported` here, if any."""
    try:
        names = [name for name in os.listdir(folder) if _NOTE.fullmatch(name)]
    except OSError:
        names = []
    said = [_said(note) for note in reported]
    for name in names:
        taken = folder / f".{name}.{own_token}.tmp"
        try:
            os.rename(folder / name, taken)  # another kernel's rename of it now fails
            said.append(_said(json.loads(read_private(taken, MAX_NOTE_BYTES))))
        except (OSError, ValueError):  # UntrustedFile and bad JSON are ValueErrors
            pass
        finally:
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
