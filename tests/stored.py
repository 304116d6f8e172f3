"""What the outbox holds, as `bugsnag-ipython outbox` lists it: journals and payload files."""

from __future__ import annotations

from pathlib import Path

from bugsnag_ipython.delivery.inventory import inventory
from bugsnag_ipython.delivery.outbox import Outbox, Stored


def stored_payloads(root: Path) -> list[Stored]:
    """The readable payloads stored under the persistence directory `root`, oldest first."""
    if not (root / "outbox").is_dir():
        return []
    found = [entry.stored for entry in inventory(Outbox(root)) if entry.stored is not None]
    return sorted(found, key=lambda stored: stored.created_at)
