"""The crash record on disk: what a kernel leaves when it dies however it dies, and the claim
that lets exactly one later kernel report it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bugsnag_ipython.core.private_files import Refusals, owner_alive
from bugsnag_ipython.core.sessions import SessionSnapshot
from bugsnag_ipython.deaths.record import CrashRecord, read_record
from bugsnag_ipython.deaths.scan import claim_dead, faults_of
from bugsnag_ipython.report.events import CellRun

ROOT = str(Path(__file__).resolve().parents[2])

_KERNEL = r"""
import os, sys, time
sys.path.insert(0, {root!r})
from bugsnag_ipython.deaths.record import CrashRecord
from bugsnag_ipython.report.events import CellRun
record = CrashRecord({directory!r}, launched_wall=time.time(), launched_monotonic=time.monotonic())
record.cell_started(CellRun(7, "big-join", "frame = left.join(right)", time.monotonic()))
if {fork!r} and os.fork() == 0:  # the child's at-fork handlers have run when fork returns
    record.cell_started(CellRun(99, None, "in the child", time.monotonic()))
    os.write(1, f"child {{os.getpid()}}\n".encode())  # one write: the lines never interleave
    time.sleep(60)
    os._exit(0)
os.write(1, f"parent {{record.token}}\n".encode())
time.sleep(60)
"""


def a_kernel(directory: Path, *, fork: bool = False) -> tuple[subprocess.Popen[str], str, int]:
    """A process that keeps a record, runs a cell and waits to be killed: it, its record's
    token and the pid of its forked child (-1: none)."""
    code = _KERNEL.format(root=ROOT, directory=str(directory), fork=fork)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    said = dict(process.stdout.readline().split() for _ in range(2 if fork else 1))
    return process, said["parent"], int(said.get("child", -1))


def new_record(directory: Path) -> CrashRecord:
    return CrashRecord(directory, launched_wall=time.time(), launched_monotonic=time.monotonic())


def claims(directory: Path, claimer: CrashRecord) -> list[Path]:
    """What the scan of the kernel `claimer` claims in the persistence directory `directory`."""
    folder = directory / "kernels"
    return claim_dead(folder, claimer.token, Refusals(), claimer.path.parent)


def test_what_a_kernel_stores_is_read_back(tmp_path: Path) -> None:
    record = new_record(tmp_path)
    try:
        record.cell_started(CellRun(6, "cell-a", "total = sum(range(10))\nprint('é')", 123.5))
        record.session(SessionSnapshot("0f1e2d3c-1111-4222-8333-444455556666", 1_800_000_000.0, 1, 2, False),
                       sending=True)
        record.document(json.dumps({"notebook": "a.ipynb"}).encode())
        record.document(json.dumps({"notebook": "b.ipynb"}).encode())
        found = read_record(record.path.read_bytes())
        assert found.pid == os.getpid() and not found.ended and found.sending
        assert found.cell is not None
        cell = found.cell
        assert (cell.execution_count, cell.cell_id, cell.started_monotonic) == (6, "cell-a", 123.5)
        assert found.cell.source == "total = sum(range(10))\nprint('é')"
        assert found.session is not None and (found.session.handled, found.session.unhandled) == (1, 2)
        assert found.facts == {"notebook": "b.ipynb"}
        # A long cell: cut as it starts, whole once the checkpoint has stored it.
        long = "values = [\n" + "    'é',\n" * 400 + "]\n"
        record.cell_started(CellRun(8, None, long, 124.0))
        cut = read_record(record.path.read_bytes()).cell
        assert cut is not None and long.startswith(cut.source) and len(cut.source) < len(long)
        record.long_source(8, 124.0, long)
        whole = read_record(record.path.read_bytes()).cell
        assert whole is not None and whole.source == long
        record.cell_started(CellRun(9, None, "short", 125.0))  # the long source was another cell's
        assert read_record(record.path.read_bytes()).cell.source == "short"  # type: ignore[union-attr]
        record.cell_finished()
        record.mark_ended()
        found = read_record(record.path.read_bytes())
        assert found.cell is None and found.ended
    finally:
        record.close(remove=True)
    assert not record.path.exists() and not record.faults_path.exists()


def test_a_killed_kernel_is_claimed_by_exactly_one_of_two_later_kernels(tmp_path: Path) -> None:
    process, token, _ = a_kernel(tmp_path)
    first, second = new_record(tmp_path), new_record(tmp_path)
    try:
        assert claims(tmp_path, first) == []  # alive: nobody takes it
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        found = [claims(tmp_path, first), claims(tmp_path, second)]
        assert sorted(len(each) for each in found) == [0, 1]
        [claimed] = found[0] or found[1]
        assert claimed.name[:12] == token
        contents = read_record(claimed.read_bytes())
        assert contents.cell is not None and contents.cell.source == "frame = left.join(right)"
        assert not faults_of(claimed).exists()
        # The claimer is alive: its claim stays its own.
        other = second if found[0] else first
        assert claims(tmp_path, other) == []
    finally:
        first.close(remove=True)
        second.close(remove=True)


def test_a_claim_whose_claimer_died_is_claimed_again_once_then_set_aside(tmp_path: Path) -> None:
    process, token, _ = a_kernel(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    claimer = new_record(tmp_path)
    [claimed] = claims(tmp_path, claimer)
    claimer.close(remove=False)  # dies before reporting: its record stays, unlocked
    later = new_record(tmp_path)
    taken = {found.name[:12]: found for found in claims(tmp_path, later)}
    # Both are dead kernels' now: the first one's, claimed again, and the claimer's own.
    assert set(taken) == {token, claimer.token}
    assert taken[token].name.endswith(f".{later.token}.claimed-again")
    assert not claimed.exists()
    taken[claimer.token].unlink()
    later.close(remove=False)  # the second claimer dies before reporting too
    last = new_record(tmp_path)
    try:
        # Not tried a third time: the record may be what killed them. Set aside, kept for a look.
        assert {found.name[:12] for found in claims(tmp_path, last)} == {later.token}
        assert not taken[token].exists()
        [kept] = (tmp_path / "kernels" / "set-aside").iterdir()
        assert kept.name.endswith(taken[token].name)
    finally:
        last.close(remove=True)


def test_a_forked_child_neither_writes_nor_keeps_alive_its_parents_record(tmp_path: Path) -> None:
    process, _, child = a_kernel(tmp_path, fork=True)
    os.kill(process.pid, signal.SIGKILL)  # the child sleeps on, with copies of every descriptor
    process.wait(10)
    try:
        [path] = (tmp_path / "kernels").glob("*.record")
        assert not owner_alive(path)
        contents = read_record(path.read_bytes())
        assert contents.cell is not None and contents.cell.execution_count == 7
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_cell_with_a_lone_surrogate_is_stored_too(tmp_path: Path) -> None:
    record = new_record(tmp_path)
    try:
        record.cell_started(CellRun(3, None, "text = '\udcff'", 1.0))
        cell = read_record(record.path.read_bytes()).cell
        assert cell is not None and cell.execution_count == 3 and cell.source.startswith("text = '")
    finally:
        record.close(remove=True)
