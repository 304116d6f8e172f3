"""What the outbox holds, as `bugsnag-ipython outbox` lists it: every payload, in a file of its
own or in a journal, readable or not, and whether a running kernel owns it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .journal import read_contents
from .outbox import JOURNAL, NAME, CorruptPayload, Outbox, Stored, listing, read_journal


@dataclass(frozen=True)
class Entry:
    """One file as `bugsnag-ipython outbox` lists it."""

    name: str
    stored: Stored | None  # None: unreadable
    owner_alive: bool



def inventory(outbox: Outbox) -> list[Entry]:
    """Every payload, in a file of its own or in a journal, readable or not, and whether a
    running kernel owns it."""
    entries: list[Entry] = []
    alive: dict[str, bool] = {}
    for name in listing(outbox.payloads):
        match = NAME.fullmatch(name)
        if match is None and (journal := JOURNAL.fullmatch(name)) is not None:
            owner_alive = outbox.alive(journal["owner"], alive, tidy=False)
            entries += _journal_inventory(outbox.payloads / name, owner_alive)
            continue
        if name.startswith(".") or match is None:
            continue
        owner_alive = outbox.alive(match["owner"], alive, tidy=False)
        try:
            stored: Stored | None = outbox.read_header(outbox.payloads / name)
        except (CorruptPayload, OSError):
            stored = None
        entries.append(Entry(name, stored, owner_alive))
    return entries

def _journal_inventory(path: Path, owner_alive: bool) -> list[Entry]:
    try:
        contents = read_contents(read_journal(path))
    except (OSError, CorruptPayload):
        return [Entry(path.name, None, owner_alive)]
    entries = [
        Entry(f"{path.name}#{entry.ident}", Stored(path, entry.kind, entry.url, entry.api_key,
                                                  entry.created_at, entry.size), owner_alive)
        for entry in contents.entries
    ]
    # A live owner may be halfway through an append: only a dead one's journal is damaged.
    if contents.problem is not None and not owner_alive:
        entries.append(Entry(path.name, None, owner_alive))
    return entries
