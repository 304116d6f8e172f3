"""Adoption: a kernel takes over the payloads that dead kernels left in the shared outbox.

A dead owner's payload file is claimed by renaming it to this owner's name, and its journal
the same way, what the journal holds that was not done becoming payload files of this owner's:
rename is atomic, so when two kernels adopt at once each file goes to exactly one of them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from ..core.private_files import is_file_or_link, read_private
from .journal import read_contents
from .outbox import (
    JOURNAL,
    MAX_JOURNAL_BYTES,
    NAME,
    STALE_TEMP_SECONDS,
    CorruptPayload,
    Outbox,
    Stored,
    listing,
)
from .retry import MAX_AGE_SECONDS
from .transport import Kind


@dataclass
class Scan:
    """What one scan claimed, and what it discarded."""

    adopted: list[Stored] = field(default_factory=list)  # oldest first
    expired: int = 0
    over_cap: int = 0
    set_aside: list[str] = field(default_factory=list)  # "name: why"



def adopt(
    outbox: Outbox,
    room: Mapping[Kind, int],
    now: float | None = None,
    pause: Callable[[], None] = lambda: None,
) -> Scan:
    """Adopt the payloads of dead owners, oldest first.

    `room` is how many more of each kind this owner may hold; beyond it the oldest are
    discarded, as are payloads older than 60 days. Unreadable files are set aside.
    `pause` is called every few files, so a long scan can let other disk work go first.
    """
    now = time.time() if now is None else now
    scan = Scan()
    alive: dict[str, bool] = {}
    claimed: list[tuple[int, str, Path]] = []
    journals: list[Path] = []
    names = listing(outbox.payloads)
    for index, name in enumerate(names):
        if index % 64 == 63:
            pause()
        path = outbox.payloads / name
        match = NAME.fullmatch(name)
        if name.startswith("."):
            _remove_if_stale(path, now)
            continue
        if match is None and (journal := JOURNAL.fullmatch(name)) is not None:
            if not outbox.alive(journal["owner"], alive):
                journals.append(path)
            continue
        if match is None:
            if is_file_or_link(path) and outbox.set_aside(path):
                scan.set_aside.append(f"{name}: not a payload file of this notifier")
            continue
        if outbox.alive(match["owner"], alive):
            continue
        mine = path.with_name(f"{match['kind']}-{match['ns']}-{match['id']}.{outbox.owner}.payload")
        try:
            os.rename(path, mine)  # the claim: another kernel's rename of it now fails
        except FileNotFoundError:
            continue
        claimed.append((int(match["ns"]), match["kind"], mine))
    if journals:
        filed = {f"{m['ns']}-{m['id']}" for m in map(NAME.fullmatch, names) if m is not None}
        for path in journals:
            pause()
            claimed += _file_dead_journal(outbox, path, filed, scan)
    claimed.sort()
    by_kind: dict[str, list[Path]] = defaultdict(list)
    for ns, kind, path in claimed:
        if now - ns / 1e9 > MAX_AGE_SECONDS:
            outbox.delete(path)
            scan.expired += 1
        else:
            by_kind[kind].append(path)
    for kind, paths in by_kind.items():
        keep = max(0, room.get(cast(Kind, kind), 0))
        for path in paths[: max(0, len(paths) - keep)]:
            outbox.delete(path)
            scan.over_cap += 1
        for index, path in enumerate(paths[max(0, len(paths) - keep) :]):
            if index % 64 == 63:
                pause()
            try:
                scan.adopted.append(outbox.read_header(path))
            except FileNotFoundError:
                continue
            except (CorruptPayload, OSError) as error:
                if outbox.set_aside(path):
                    scan.set_aside.append(f"{path.name}: {error}")
    scan.adopted.sort(key=lambda stored: stored.created_at)
    # Every kernel leaves a lock file behind; those of the dead go (owner_alive tidies).
    for name in listing(outbox.owners):
        if name.endswith(".lock") and name[:-5] not in alive:
            outbox.owner_alive(name[:-5])
    return scan

def _file_dead_journal(
    outbox: Outbox, path: Path, filed: set[str], scan: Scan
) -> list[tuple[int, str, Path]]:
    """Claim a dead owner's journal and turn what it holds that was not done into payload
    files of this owner's; those already filed (by an adopter that died on the way) are
    skipped. A journal that cannot be read to its end is set aside after that."""
    match = JOURNAL.fullmatch(path.name)
    assert match is not None and outbox.owner is not None
    mine = path.with_name(f"{match['tag']}.{outbox.owner}.journal")
    try:
        os.rename(path, mine)  # the claim, as for payload files
        data = read_private(mine, MAX_JOURNAL_BYTES)
    except FileNotFoundError:
        return []
    except CorruptPayload as error:
        if outbox.set_aside(mine):
            scan.set_aside.append(f"{mine.name}: {error}")
        return []
    contents = read_contents(data)
    made: list[tuple[int, str, Path]] = []
    for entry in contents.entries:
        if entry.ident in filed:
            continue
        body = data[entry.offset : entry.offset + entry.size]
        filed_as = outbox.write(entry.envelope(body), entry.ident)
        made.append((int(entry.ident.split("-", 1)[0]), entry.kind, filed_as))
    if contents.problem is None:
        outbox.delete(mine)
    elif outbox.set_aside(mine):
        scan.set_aside.append(f"{mine.name}: {contents.problem}")
    return made


def _remove_if_stale(path: Path, now: float) -> None:
    with contextlib.suppress(OSError):
        if path.name.endswith(".tmp") and now - path.stat().st_mtime > STALE_TEMP_SECONDS:
            path.unlink()
