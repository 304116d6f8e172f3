"""The watcher process and what it shares with the scan: its claim (a claim whose lock is held
is being reported, a scan leaves it alone), its ways out when there is no death, and the notes
of deaths the next kernel shows."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bugsnag_ipython.deaths.record import CrashRecord
from bugsnag_ipython.deaths.scan import claim_locked, take_notes
from bugsnag_ipython.deaths.watcher import MODULE
from bugsnag_ipython.report.events import CellRun
from tests.deaths.test_record import claims, new_record

WAIT = 20.0


def dead_record(directory: Path) -> Path:
    """A record whose kernel is gone: made and let go without being removed."""
    record = new_record(directory)
    record.close(remove=False)
    return record.path


def test_a_claim_whose_lock_is_held_is_left_to_its_watcher_then_taken_when_it_is_gone(tmp_path: Path) -> None:
    path = dead_record(tmp_path)
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the watcher's, woken by the kernel's death
    claimed = claim_locked(path, fd, "a" * 12)
    assert claimed is not None and claimed.name.endswith(".aaaaaaaaaaaa.claimed")
    later = new_record(tmp_path)
    assert claims(tmp_path, later) == []  # being reported now
    assert claim_locked(path, fd, "b" * 12) is None  # once only
    os.close(fd)  # the watcher died before it was done
    [again] = claims(tmp_path, later)
    assert again.name.endswith(f".{later.token}.claimed-again")
    later.close(remove=True)


def test_a_scan_that_claimed_first_keeps_the_record(tmp_path: Path) -> None:
    path = dead_record(tmp_path)
    later = new_record(tmp_path)
    [claimed] = claims(tmp_path, later)
    fd = os.open(claimed, os.O_RDONLY)
    assert claim_locked(path, fd, "a" * 12) is None and claimed.exists()
    os.close(fd)
    later.close(remove=True)


def a_watcher(record: CrashRecord, directory: Path) -> subprocess.Popen[bytes]:
    facts = os.stat(record.path)
    process = subprocess.Popen([sys.executable, "-m", MODULE], stdin=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    assert process.stdin is not None
    setup = {"record": str(record.path), "identity": [facts.st_dev, facts.st_ino],
             "directory": str(directory), "config": {"api_key": "a" * 32}, "device": {}}
    process.stdin.write(json.dumps(setup).encode() + b"\n")
    process.stdin.flush()
    return process


def test_the_watcher_leaves_when_the_kernel_closes_its_stdin(tmp_path: Path) -> None:
    record = new_record(tmp_path)
    watcher = a_watcher(record, tmp_path)
    assert watcher.stdin is not None
    watcher.stdin.close()
    assert watcher.wait(WAIT) == 0 and watcher.stderr is not None and watcher.stderr.read() == b""
    assert record.path.exists()  # the kernel lives on: its record is its own
    record.close(remove=True)


def test_a_kernel_that_began_a_normal_end_is_not_reported_and_its_record_goes(tmp_path: Path) -> None:
    record = new_record(tmp_path)
    record.cell_started(CellRun(3, None, "time.sleep(60)", time.monotonic()))
    watcher = a_watcher(record, tmp_path)  # waiting on the lock, or about to: the same either way
    record.mark_ended()
    record.close(remove=False)  # killed after the shutdown request, the record still there
    assert watcher.wait(WAIT) == 0 and watcher.stderr is not None and watcher.stderr.read() == b""
    assert list((tmp_path / "kernels").iterdir()) == []
    assert watcher.stdin is not None
    watcher.stdin.close()


def leave_note(folder: Path, token: str, died_at: float, outcome: str = "reported",
               count: int | None = 14) -> None:
    """A death note as the watcher or a scan leaves it for the kernel `token`."""
    note = {"diedAt": died_at, "running": count is not None, "executionCount": count,
            "cause": "out of memory", "outcome": outcome}
    (folder / f"{token}.died").write_text(json.dumps(note))


def test_the_newest_recent_note_is_said_and_every_note_is_taken_once(tmp_path: Path) -> None:
    folder = tmp_path / "kernels"
    folder.mkdir()
    now = time.time()
    leave_note(folder, "1" * 12, now - 7200)
    leave_note(folder, "2" * 12, now - 60, "kept", None)
    leave_note(folder, "3" * 12, now - 5)
    assert take_notes(folder, "f" * 12, now - 3600, []) == "died running In [14] (out of memory); reported."
    assert list(folder.iterdir()) == []
    assert take_notes(folder, "e" * 12, now - 3600, []) is None
    leave_note(folder, "4" * 12, now, "kept", None)
    assert take_notes(folder, "f" * 12, now - 3600, []) == (
        "died (out of memory); kept to be reported later (the endpoint could not be reached).")


def test_a_note_that_is_a_link_or_garbage_is_taken_unread(tmp_path: Path) -> None:
    folder = tmp_path / "kernels"
    folder.mkdir()
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"diedAt": time.time(), "cause": "x", "outcome": "reported"}))
    (folder / f"{'1' * 12}.died").symlink_to(secret)
    (folder / f"{'2' * 12}.died").write_text("{not json")
    assert take_notes(folder, "f" * 12, 0.0, []) is None
    assert list(folder.iterdir()) == [] and secret.exists()
