"""The outbox on real files: atomic writes, permissions, claims between processes."""

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
from bugsnag_ipython.delivery.retry import MAX_AGE_SECONDS
from bugsnag_ipython.delivery.transport import Envelope, Kind
from tests.payloads import API_KEY as KEY

URL = "http://127.0.0.1:9/notify"
ROOM: dict[Kind, int] = {"session": 1000, "event": 10000}


def envelope(n: int = 0, *, created_at: float | None = None) -> Envelope:
    body = f'{{"n":{n}}}'.encode()
    return Envelope("event", URL, KEY, body, time.time() if created_at is None else created_at)


def fill(root: Path, count: int) -> list[str]:
    """`count` payloads left by an owner that is gone; their payload ids."""
    outbox = Outbox(root).open()
    paths = [outbox.write(envelope(n)) for n in range(count)]
    outbox.close()
    return sorted(path.name.split(".")[0] for path in paths)


def payload_files(outbox: Outbox) -> list[str]:
    """Every file in the outbox but its own (empty) journal."""
    journal = outbox.journal.path.name if outbox.journal is not None else None
    return sorted(p.name for p in outbox.payloads.iterdir() if p.name != journal)


def test_a_payload_is_written_atomically_private_and_read_back(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "p").open()
    path = outbox.write(envelope(7))
    stored, body = outbox.read(path)
    assert body == b'{"n":7}'
    assert (stored.kind, stored.url, stored.api_key) == ("event", URL, KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (outbox.payloads, outbox.owners, outbox.aside):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert payload_files(outbox) == [path.name]  # no temp file left
    assert outbox.journal is not None
    assert stat.S_IMODE(outbox.journal.path.stat().st_mode) == 0o600


def test_a_live_owners_files_are_left_alone_and_a_dead_owners_are_adopted(tmp_path: Path) -> None:
    owner = Outbox(tmp_path).open()
    owner.write(envelope(1))
    other = Outbox(tmp_path).open()
    assert other.scan(ROOM).adopted == []  # its owner still holds its lock
    owner.close()
    [adopted] = other.scan(ROOM).adopted
    assert adopted.owner == other.owner
    assert other.read(adopted.path)[1] == b'{"n":1}'
    assert other.scan(ROOM).adopted == []  # adopted once
    assert [p.name for p in other.owners.iterdir()] == [f"{other.owner}.lock"]  # dead ones tidied


def test_a_killed_process_lets_go_of_its_payloads(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from bugsnag_ipython.delivery.outbox import Outbox\n"
        "from bugsnag_ipython.delivery.transport import Envelope\n"
        f"outbox = Outbox({str(tmp_path)!r}).open()\n"
        f"outbox.write(Envelope('event', {URL!r}, {KEY!r}, b'{{\"n\":3}}', time.time()))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        scanner = Outbox(tmp_path).open()
        assert scanner.scan(ROOM).adopted == []
        os.kill(child.pid, signal.SIGKILL)
        child.wait(5)
        [adopted] = scanner.scan(ROOM).adopted
        assert scanner.read(adopted.path)[1] == b'{"n":3}'
    finally:
        child.kill()
        child.wait()


def _adopt(root: str, start: Any, results: Any, finish: Any) -> None:
    outbox = Outbox(root).open()
    start.wait(10)
    results.put([stored.path.name.split(".")[0] for stored in outbox.scan(ROOM).adopted])
    finish.wait(10)  # alive until all have scanned: a dead owner's payloads are adopted again


def test_processes_adopting_at_once_each_get_a_payload_at_most_once(tmp_path: Path) -> None:
    ids = fill(tmp_path, 400)
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
    everything = [name for names in claimed for name in names]
    assert sorted(everything) == ids  # every payload adopted, none twice


def test_unreadable_and_foreign_files_are_set_aside(tmp_path: Path) -> None:
    fill(tmp_path, 2)
    outbox = Outbox(tmp_path).open()
    (outbox.payloads / f"event-{time.time_ns():019d}-ab-1.{'1' * 12}.payload").write_bytes(b"junk")
    (outbox.payloads / "README").write_text("not ours")
    stale = outbox.payloads / ".event-half-written.tmp"
    stale.write_bytes(b"{")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    scan = outbox.scan(ROOM)
    assert len(scan.adopted) == 2
    assert len(scan.set_aside) == 2 and outbox.set_aside_count() == 2
    assert not stale.exists()


def test_old_payloads_age_out_and_the_oldest_go_past_the_cap(tmp_path: Path) -> None:
    writer = Outbox(tmp_path).open()
    writer.write(envelope(0, created_at=time.time() - MAX_AGE_SECONDS - 60))
    for n in range(1, 6):
        writer.write(envelope(n, created_at=time.time() - 100 + n))
    writer.close()
    outbox = Outbox(tmp_path).open()
    scan = outbox.scan({"session": 10, "event": 3})
    assert (scan.expired, scan.over_cap) == (1, 2)
    assert [outbox.read(s.path)[1] for s in scan.adopted] == [b'{"n":3}', b'{"n":4}', b'{"n":5}']
    assert len(payload_files(outbox)) == 3
