"""The journal on real files: appends read back, emptied when all is sent, a dead owner's
journal turned into payload files once, and a journal grown past its limit filed away."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.delivery import keeper
from bugsnag_ipython.delivery.inventory import inventory
from bugsnag_ipython.delivery.journal import read_contents
from bugsnag_ipython.delivery.outbox import Outbox
from bugsnag_ipython.delivery.retry import RetryPolicy
from bugsnag_ipython.delivery.sender import Delivery
from bugsnag_ipython.delivery.transport import Envelope, Kind
from tests.delivery.test_delivery import event
from tests.payloads import API_KEY as KEY
from tests.stored import stored_payloads
from tests.waits import eventually

URL = "http://127.0.0.1:9/notify"
ROOM: dict[Kind, int] = {"session": 1000, "event": 10000}


def envelope(n: int, url: str = URL) -> Envelope:
    return Envelope("event", url, KEY, json.dumps({"n": n}).encode(), time.time())


def test_appended_payloads_read_back_and_the_journal_empties_once_all_are_settled(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path).open()
    journal = outbox.journal
    assert journal is not None
    placed = [journal.append(envelope(n)) for n in range(3)]
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert [journal.read(offset, len(envelope(n).body)) for n, (_, offset) in enumerate(placed)] == [
        b'{"n": 0}', b'{"n": 1}', b'{"n": 2}'
    ]
    journal.settle([placed[0][0]])
    assert [e.ident for e in read_contents(journal.path.read_bytes()).entries] == [placed[1][0], placed[2][0]]
    journal.settle([placed[1][0], placed[2][0]])
    assert journal.path.stat().st_size == 0  # nothing left in it to keep
    outbox.close()
    assert not journal.path.exists()  # an empty journal goes with its owner


def test_a_dead_owners_journal_becomes_payload_files_of_the_adopter_once(tmp_path: Path) -> None:
    dead = Outbox(tmp_path).open()
    assert dead.journal is not None
    idents = [dead.journal.append(envelope(n))[0] for n in range(4)]
    dead.journal.settle([idents[1]])  # delivered before the kernel died
    dead.close()  # as a killed kernel does: its lock goes, its journal stays
    adopter = Outbox(tmp_path).open()
    adopted = adopter.scan(ROOM).adopted
    assert [adopter.read(s.path)[1] for s in adopted] == [b'{"n": 0}', b'{"n": 2}', b'{"n": 3}']
    assert all(s.owner == adopter.owner for s in adopted)
    assert list(adopter.payloads.glob("*.journal")) == [adopter.journal.path]  # type: ignore[union-attr]
    assert adopter.scan(ROOM).adopted == []


def test_payloads_an_adopter_filed_before_dying_are_not_filed_twice(tmp_path: Path) -> None:
    dead = Outbox(tmp_path).open()
    assert dead.journal is not None
    ident, _ = dead.journal.append(envelope(1))
    dead.journal.append(envelope(2))
    # An adopter that died halfway: it had filed the first payload under its own name.
    dead.write(envelope(1), ident)
    dead.close()
    adopter = Outbox(tmp_path).open()
    bodies = sorted(adopter.read(s.path)[1] for s in adopter.scan(ROOM).adopted)
    assert bodies == [b'{"n": 1}', b'{"n": 2}']


def test_a_journal_cut_short_is_set_aside_after_its_whole_payloads_are_filed(tmp_path: Path) -> None:
    dead = Outbox(tmp_path).open()
    assert dead.journal is not None
    dead.journal.append(envelope(1))
    path = dead.journal.path
    dead.close()
    with path.open("ab") as file:
        file.write(b'{"format":2,"id":"9-9-9","kind":"event","url":"http://x/","apiKey":"k","createdAt":1,')
    adopter = Outbox(tmp_path).open()
    scan = adopter.scan(ROOM)
    assert [adopter.read(s.path)[1] for s in scan.adopted] == [b'{"n": 1}']
    assert len(scan.set_aside) == 1 and "has no end" in scan.set_aside[0]
    assert adopter.set_aside_count() == 1


def test_the_outbox_listing_shows_what_a_live_journal_holds(tmp_path: Path) -> None:
    live = Outbox(tmp_path).open()
    assert live.journal is not None
    for n in range(2):
        live.journal.append(envelope(n))
    entries = inventory(Outbox(tmp_path))
    assert [(e.stored.kind, e.owner_alive) for e in entries if e.stored] == [("event", True)] * 2
    live.close()


def test_a_journal_past_its_limit_is_filed_away_and_everything_arrives_once(
    tmp_path: Path, collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keeper, "JOURNAL_LIMIT", 4000)
    collector.go_down()
    delivery = Delivery(policy=RetryPolicy(base=0.05, maximum=0.4))
    delivery.reconfigure(Configuration(persistence_directory=str(tmp_path)))
    for n in range(200):
        delivery.submit(event(collector, n))
    outbox = tmp_path / "outbox"
    # Filed into files of their own, with one journal left: the keeper has caught up.
    assert eventually(lambda: list(outbox.glob("*.payload")) and len(list(outbox.glob("*.journal"))) == 1)
    assert len(stored_payloads(tmp_path)) == 200
    collector.come_back()
    assert delivery.flush(20) is True
    assert delivery.stats.delivered == 200
    messages = sorted(event.message for event in collector.store.events())
    assert messages == sorted(f"n={n}" for n in range(200))
    assert eventually(lambda: stored_payloads(tmp_path) == [])  # files go right after delivery
    assert len(list(outbox.glob("*.journal"))) == 1  # the retired ones are gone
    delivery.close(0)
