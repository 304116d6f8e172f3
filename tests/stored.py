"""What the outbox holds, as `bugsnag-ipython outbox` lists it: journals and payload files."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from bugsnag_ipython.delivery.journal import Stored
from bugsnag_ipython.delivery.outbox import Outbox
from bugsnag_ipython.delivery.payload import Payload


def stored_payloads(root: Path) -> list[Stored]:
    """The readable payloads stored under the persistence directory `root`, oldest first."""
    if not (root / "outbox").is_dir():
        return []
    found = [entry.stored for entry in Outbox(root).listing() if entry.stored is not None]
    return sorted(found, key=lambda stored: stored.created_at)


def payload_file(root: Path, payload: Payload, *, owner: str = "0123456789ab") -> Path:
    """A payload file as versions before the single journal format left them in the outbox (a
    JSON header line, then the body), by an `owner` that holds no lock: a dead kernel's."""
    directory = root / "outbox"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(root, 0o700)
    ident = f"{int(payload.created_at * 1e9):019d}-{owner}-{secrets.token_hex(2)}"
    header = {"format": 2, "kind": payload.kind, "url": payload.url, "apiKey": payload.api_key,
              "createdAt": payload.created_at, "bytes": len(payload.body)}
    path = directory / f"{payload.kind}-{ident}.{owner}.payload"
    path.write_bytes(json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload.body)
    path.chmod(0o600)
    return path
