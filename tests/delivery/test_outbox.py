"""The outbox on real files: private journals, claims between processes, adoption of what dead
owners left (their journals and the payload files of older versions), each payload once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bugsnag_ipython.delivery.outbox import Outbox
from bugsnag_ipython.delivery.payload import MAX_AGE_SECONDS, Kind, Payload
from tests.payloads import API_KEY as KEY
from tests.stored import payload_file, stored_payloads

URL = "http://127.0.0.1:9/notify"
ROOM: dict[Kind, int] = {"session": 1000, "event": 10000}


def payload(n: int = 0, *, created_at: float | None = None) -> Payload:
    body = f'{{"n":{n}}}'.encode()
    return Payload("event", URL, KEY, body, time.time() if created_at is None else created_at)


def bodies(root: Path) -> list[bytes]:
    """The bodies of the payloads the outbox under `root` holds, oldest first, read as files."""
    found = []
    for stored in stored_payloads(root):
        with stored.path.open("rb") as file:
            file.seek(stored.offset)
            found.append(file.read(stored.size))
    return found


def files(outbox: Outbox) -> list[str]:
    return sorted(path.name for path in outbox.payloads.iterdir())


def test_payloads_are_stored_privately_listed_and_gone_once_done(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "p").open()
    places = [outbox.store(payload(n)) for n in range(3)]
    assert bodies(tmp_path / "p") == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    [(owner, alive)] = {(s.owner, e.owner_alive) for e in outbox.listing() if (s := e.stored)}
    assert (owner, alive) == (outbox.owner, True)
    for directory in (outbox.payloads, outbox.owners, outbox.aside):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [journal] = outbox.payloads.iterdir()
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    places[0][0].settle([places[0][1].ident])
    assert bodies(tmp_path / "p") == [b'{"n":1}', b'{"n":2}']
    places[0][0].settle([stored.ident for _, stored in places[1:]])
    assert journal.stat().st_size == 0  # nothing left in it to keep
    outbox.close()
    assert not journal.exists()  # an empty journal goes with its owner


def test_a_live_owners_payloads_are_left_alone_and_a_dead_owners_adopted_once(tmp_path: Path) -> None:
    owner = Outbox(tmp_path).open()
    owner.store(payload(1))
    other = Outbox(tmp_path).open()
    assert other.adopt(ROOM).adopted == []  # its owner still holds its lock
    owner.close()
    [(_, adopted)] = other.adopt(ROOM).adopted
    assert adopted.owner == other.owner
    assert bodies(tmp_path) == [b'{"n":1}']
    assert other.adopt(ROOM).adopted == []  # adopted once
    assert [p.name for p in other.owners.iterdir()] == [f"{other.owner}.lock"]  # dead ones tidied
    assert len(files(other)) == 1  # the dead owner's journal went once adopted


def test_a_killed_process_lets_go_of_its_payloads(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from bugsnag_ipython.delivery.outbox import Outbox\n"
        "from bugsnag_ipython.delivery.payload import Payload\n"
        f"outbox = Outbox({str(tmp_path)!r}).open()\n"
        f"outbox.store(Payload('event', {URL!r}, {KEY!r}, b'{{\"n\":3}}', time.time()))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        scanner = Outbox(tmp_path).open()
        assert scanner.adopt(ROOM).adopted == []
        os.kill(child.pid, signal.SIGKILL)
        child.wait(5)
        [(_, adopted)] = scanner.adopt(ROOM).adopted
        assert adopted.owner == scanner.owner and bodies(tmp_path) == [b'{"n":3}']
    finally:
        child.kill()
        child.wait()


def _adopt(root: str, start: Any, results: Any, finish: Any) -> None:
    outbox = Outbox(root).open()
    start.wait(10)
    results.put([stored.ident for _, stored in outbox.adopt(ROOM).adopted])
    finish.wait(10)  # alive until all have scanned: a dead owner's payloads are adopted again


def test_processes_adopting_at_once_each_get_a_payload_at_most_once(tmp_path: Path) -> None:
    ids = []
    for _ in range(4):  # four dead owners' journals
        dead = Outbox(tmp_path).open()
        ids += [dead.store(payload(n))[1].ident for n in range(50)]
        dead.close()
    for n in range(200):  # and the payload files an older version left
        ids.append(payload_file(tmp_path, payload(n), owner=f"{n % 7:012x}").name.split(".")[0][6:])
    context = multiprocessing.get_context("fork")
    start, finish, results = context.Event(), context.Event(), context.Queue()
    workers = [
        context.Process(target=_adopt, args=(str(tmp_path), start, results, finish)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    start.set()
    claimed = [results.get(timeout=30) for _ in workers]
    finish.set()
    for worker in workers:
        worker.join(10)
    everything = [ident for idents in claimed for ident in idents]
    assert sorted(everything) == sorted(ids)  # every payload adopted, none twice


def test_an_adopter_that_died_halfway_leaves_each_payload_to_be_adopted_once(tmp_path: Path) -> None:
    dead = Outbox(tmp_path).open()
    first = dead.store(payload(1))[1]
    second = dead.store(payload(2))[1]
    dead.close()
    # An adopter that died halfway: both payloads were in its journal, the first delivered,
    # and the first owner's journal was not yet removed.
    adopter = Outbox(tmp_path).open()
    journal, _ = adopter.store(payload(1), first.ident)
    adopter.store(payload(2), second.ident)
    journal.settle([first.ident])
    adopter.close()
    last = Outbox(tmp_path).open()
    assert [stored.ident for _, stored in last.adopt(ROOM).adopted] == [second.ident]
    assert bodies(tmp_path) == [b'{"n":2}']


def test_an_older_versions_payload_files_are_adopted_into_the_journal(tmp_path: Path) -> None:
    for n in range(3):
        payload_file(tmp_path, payload(n, created_at=time.time() + n))
    outbox = Outbox(tmp_path).open()
    assert len(outbox.adopt(ROOM).adopted) == 3
    assert bodies(tmp_path) == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert [name.endswith(".journal") for name in files(outbox)] == [True]


def test_a_journal_cut_short_is_set_aside_after_its_whole_payloads_are_adopted(tmp_path: Path) -> None:
    dead = Outbox(tmp_path).open()
    dead.store(payload(1))
    [path] = dead.payloads.iterdir()
    dead.close()
    with path.open("ab") as file:
        file.write(b'{"format":2,"id":"9-9-9","kind":"event","url":"http://x/","apiKey":"k","createdAt":1,')
    adopter = Outbox(tmp_path).open()
    scan = adopter.adopt(ROOM)
    assert len(scan.adopted) == 1 and bodies(tmp_path) == [b'{"n":1}']
    assert len(scan.set_aside) == 1 and "has no end" in scan.set_aside[0]
    assert adopter.set_aside_count() == 1


def test_unreadable_and_foreign_files_are_set_aside(tmp_path: Path) -> None:
    for n in range(2):
        payload_file(tmp_path, payload(n))
    outbox = Outbox(tmp_path).open()
    (outbox.payloads / f"event-{time.time_ns():019d}-ab-1.{'1' * 12}.payload").write_bytes(b"junk")
    (outbox.payloads / "README").write_text("not ours")
    stale = outbox.payloads / ".event-half-written.tmp"
    stale.write_bytes(b"{")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    scan = outbox.adopt(ROOM)
    assert len(scan.adopted) == 2
    assert len(scan.set_aside) == 2 and outbox.set_aside_count() == 2
    assert not stale.exists()


def test_old_payloads_age_out_and_the_oldest_go_past_the_cap(tmp_path: Path) -> None:
    writer = Outbox(tmp_path).open()
    writer.store(payload(0, created_at=time.time() - MAX_AGE_SECONDS - 60))
    for n in range(1, 6):
        writer.store(payload(n, created_at=time.time() - 100 + n))
    writer.close()
    outbox = Outbox(tmp_path).open()
    scan = outbox.adopt({"session": 10, "event": 3})
    assert (scan.expired, scan.over_cap) == (1, 2)
    assert bodies(tmp_path) == [b'{"n":3}', b'{"n":4}', b'{"n":5}']
