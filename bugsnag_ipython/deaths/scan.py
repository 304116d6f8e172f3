"""From a claimed record to a reported death, by the rules of README's "Kernel deaths": a normal
end is never reported; a fatal signal always; a kernel gone without a trace only if a cell ran
(an idle kernel killed by a reboot or a culler lost no work); nothing of a kernel that sent
nothing. The watcher and the next kernel's scan both settle a claimed record here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.basics import log
from ..report.cells import notebook_ref
from ..report.events import DeadCell
from ..report.kernel_death import KernelDeath, OomEvidence, parse_fault_dump
from ..report.payloads import iso8601
from . import memory
from .claims import Claimed, SetAside, claim_dead, why
from .notes import DROPPED, REPORTED, DeathNote, note_of
from .place import record_folders
from .record import read_record

if TYPE_CHECKING:
    from ..client import Client
    from ..core.config import Configuration
    from .record import CrashRecord

# Sends a death: the outcome (notes.py), or None when it could be neither sent nor kept.
Send = Callable[[KernelDeath], "str | None"]


def settle(claimed: Claimed, config: Configuration, send: Send, aside: SetAside) -> DeathNote | None:
    """Report the death in `claimed` with `send`, then remove the record; the note of the
    death, or None when there is none to tell. A record that makes anything fail is set aside
    (`aside`); one that could be neither sent nor kept stays claimed, for a later scan."""
    try:
        death = death_of(claimed, config)
        outcome = DROPPED if death is None else send(death)
    except Exception as error:  # whatever the record holds: it alone is set aside
        aside.put(claimed.path, why(error), claimed.faults)
        return None
    if outcome is None:
        return None
    claimed.remove()
    return None if death is None or outcome == DROPPED else note_of(death, outcome)


def report_dead_kernels(client: Client, directory: str, own: CrashRecord | None) -> list[DeathNote]:
    """Claim the records of dead kernels under `directory` and report each death that counts
    through `client`, each record on its own: one that cannot be read or reported is set aside,
    and counted in `client.crash_records`. The notes of the deaths reported."""
    if own is None or own.closed:
        return []  # a claim needs a live record of this kernel's to be seen alive
    notes: list[DeathNote] = []

    def send(death: KernelDeath) -> str:
        return REPORTED if client.notify_kernel_death(death) else DROPPED

    for folder in record_folders(directory):
        aside = SetAside(folder)
        try:
            claims = claim_dead(folder, own.token, aside, live=own.path.parent)
        except OSError as error:
            log.info("Crash records in %s could not be looked at (%s).", folder, error)
            continue
        for claimed in claims:
            note = settle(claimed, client.config, send, aside)
            if note is not None:
                notes.append(note)
        if aside.moved:
            client.crash_records.set_aside += len(aside.moved)
            client.crash_records.folder = str(aside.folder)
    return notes


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
        for key, value in (("residentBytes", vitals.rss), ("peakResidentBytes", vitals.peak_rss),
                           ("cgroupUsageBytes", vitals.cgroup_usage),
                           ("cgroupLimitBytes", vitals.cgroup_limit)):
            if value >= 0:
                memory_seen[key] = value
        memory_seen["at"] = iso8601(vitals.seen_wall)
    project_root = _text(facts.get("projectRoot")) or config.project_root
    cells = facts.get("cells")
    return KernelDeath(
        pid=contents.pid,
        died_at=died_at,
        launched_at=contents.launched_wall,
        cell=cell,
        fault=fault,
        oom=_oom_evidence(facts.get("oomKill")),
        memory=memory_seen,
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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
