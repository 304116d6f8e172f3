"""Notes of kernel deaths for the user: `kernels/<token>.died` in the persistence directory.

Whoever reports a death leaves a small JSON note; the next kernel takes the notes (each renamed
first, so that two kernels never both show one) and says the newest recent one in status and the
panel: "Previous kernel died running In [14] (out of memory); reported."
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.private_files import UntrustedFile, read_private, write_private

if TYPE_CHECKING:
    from ..report.kernel_death import KernelDeath

NOTE_SUFFIX = ".died"
MAX_NOTE_BYTES = 4096
RECENT_SECONDS = 3600.0  # a death older than this before the kernel started is not said
# What became of the report; DROPPED (not a death that counts, or an on_error callback dropped
# it) leaves no note.
REPORTED, KEPT, NOT_SENT, REFUSED, DROPPED = "reported", "kept", "not sent", "refused", "dropped"
_OUTCOMES = {
    REFUSED: "not reported (the endpoint refused it).",
    REPORTED: "reported.",
    KEPT: "kept to be reported later (the endpoint could not be reached).",
    NOT_SENT: "not reported (its release stage is not enabled).",
}
_NOTE = re.compile(r"[0-9a-f]{12}\.died")


@dataclass(frozen=True)
class DeathNote:
    died_at: float  # seconds since the epoch
    running: bool  # a cell was running
    execution_count: int | None
    cause: str  # "out of memory", "SIGSEGV", "killed"
    outcome: str  # REPORTED, KEPT, NOT_SENT or REFUSED

    def text(self) -> str:
        """What follows "Previous kernel ": "died running In [14] (out of memory); reported."."""
        where = ""
        if self.running:
            where = f" running In [{self.execution_count}]" if self.execution_count else " running a cell"
        return f"died{where} ({self.cause}); {_OUTCOMES.get(self.outcome, self.outcome)}"


def note_of(death: KernelDeath, outcome: str) -> DeathNote:
    fault, cell = death.fault, death.cell
    cause = "out of memory" if death.out_of_memory else "killed"
    if fault is not None:
        cause = fault.signal or fault.description.lower()
    return DeathNote(death.died_at, cell is not None, cell.execution_count if cell else None, cause,
                     outcome)


def leave_note(folder: Path, token: str, note: DeathNote) -> None:
    """Leave `note` for the dead kernel `token` in `folder` (a persistence directory's kernels/);
    never raises: a note that cannot be written is only not shown."""
    data = json.dumps({"diedAt": note.died_at, "running": note.running,
                       "executionCount": note.execution_count, "cause": note.cause,
                       "outcome": note.outcome}).encode()
    with contextlib.suppress(OSError, UntrustedFile):
        write_private(folder / f"{token}{NOTE_SUFFIX}", data)


def take_notes(folder: Path, own_token: str, since: float) -> DeathNote | None:
    """Take every note in `folder` for the kernel `own_token`; the newest of the deaths since
    `since` (seconds since the epoch), if any. The others are gone all the same."""
    try:
        names = [name for name in os.listdir(folder) if _NOTE.fullmatch(name)]
    except OSError:
        return None
    newest: DeathNote | None = None
    for name in names:
        taken = folder / f".{name}.{own_token}.tmp"
        try:
            os.rename(folder / name, taken)  # another kernel's rename of it now fails
        except OSError:
            continue
        try:
            note = _parse(json.loads(read_private(taken, MAX_NOTE_BYTES)))
        except (OSError, ValueError):  # UntrustedFile and bad JSON are ValueErrors
            note = None
        finally:
            with contextlib.suppress(OSError):
                taken.unlink()
        if note is not None and note.died_at >= since and (newest is None or note.died_at > newest.died_at):
            newest = note
    return newest


def _parse(found: Any) -> DeathNote | None:
    if not isinstance(found, dict):
        return None
    died_at, count, cause = found.get("diedAt"), found.get("executionCount"), found.get("cause")
    outcome = found.get("outcome")
    if (not isinstance(died_at, (int, float)) or not isinstance(cause, str) or len(cause) > 40
            or outcome not in _OUTCOMES or not (count is None or isinstance(count, int))):
        return None
    return DeathNote(float(died_at), found.get("running") is True, count, cause, outcome)
