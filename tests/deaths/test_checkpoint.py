"""The checkpoint: what the crash record holds besides the running cell, read back as the next
kernel reads it."""

from __future__ import annotations

import time
from pathlib import Path

from bugsnag_ipython.client import Client
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.deaths.checkpoint import Checkpoint
from bugsnag_ipython.deaths.record import CrashRecord, read_record
from bugsnag_ipython.report.events import CellRun
from tests.payloads import API_KEY as KEY


def setup(tmp_path: Path, **options: object) -> tuple[Client, CrashRecord, Checkpoint]:
    now = [1000.0]
    client = Client(Configuration(persistence_directory=str(tmp_path), **options),  # type: ignore[arg-type]
                    monotonic=lambda: now[0], wall_clock=lambda: 1_800_000_000.0 + now[0])
    record = CrashRecord(tmp_path, launched_wall=1_800_001_000.0, launched_monotonic=1000.0)
    checkpoint = Checkpoint(record, client, None)
    client.listeners.append(checkpoint.session_changed)
    return client, record, checkpoint


def test_the_session_and_its_counts_are_written_as_they_change(tmp_path: Path) -> None:
    client, record, _ = setup(tmp_path, api_key=KEY)
    try:
        client.launch(in_background=True)
        client.notify(ValueError("handled one"))
        session = read_record(record.path.read_bytes()).session
        assert session is not None and session.id == client.current_session().id  # type: ignore[union-attr]
        assert (session.handled, session.unhandled) == (1, 0)
        assert read_record(record.path.read_bytes()).sending
        client.pause_session()
        assert read_record(record.path.read_bytes()).session is None  # paused: counted against none
    finally:
        record.close(remove=True)


def test_without_an_api_key_the_record_says_nothing_is_sent(tmp_path: Path) -> None:
    _, record, checkpoint = setup(tmp_path)
    try:
        checkpoint.session_changed()
        assert not read_record(record.path.read_bytes()).sending
    finally:
        record.close(remove=True)


def test_a_checkpoint_writes_vitals_breadcrumbs_metadata_redacted_and_a_long_source(tmp_path: Path) -> None:
    client, record, checkpoint = setup(tmp_path, api_key=KEY, app_version="2.0")
    try:
        client.leave_breadcrumb("loaded prices", {"rows": 120, "db_password": "hunter2"})
        client.metadata.add("dataset", {"source": "s3://bucket/key", "api_token": "t0ken"})
        long = "x = 1\n" * 400
        run = CellRun(9, "train", long, 1040.0)
        client.cell_started(run)
        record.cell_started(run)
        before = time.monotonic()
        checkpoint.checkpoint()
        found = read_record(record.path.read_bytes())
        assert found.vitals is not None and before <= found.vitals.seen_monotonic <= time.monotonic()
        assert found.vitals.rss > 1_000_000
        assert found.cell is not None and found.cell.source == long  # whole, not cut at 1 kB
        facts = found.facts
        assert facts["app"] == {"releaseStage": "production", "version": "2.0"}
        [crumb] = facts["breadcrumbs"]
        assert crumb["name"] == "loaded prices" and crumb["metaData"]["db_password"] == "[REDACTED]"
        assert facts["metadata"]["dataset"] == {"source": "s3://bucket/key", "api_token": "[REDACTED]"}
        assert "hunter2" not in record.path.read_bytes().decode("utf-8", "replace")
    finally:
        record.close(remove=True)


def test_a_kernel_moved_into_another_cgroup_has_that_cgroups_oom_count_as_baseline(tmp_path: Path) -> None:
    from bugsnag_ipython.deaths.checkpoint import FollowedCgroup
    from tests.deaths.test_memory import tree, v1_cgroup

    v1_cgroup(tmp_path, "user", 2)
    v1_cgroup(tmp_path, "limited", 7, limit=256 * 1024 * 1024)
    tree(tmp_path, {"proc/self/cgroup": "4:memory:/user\n"})
    client, record, _ = setup(tmp_path / "outbox", api_key=KEY)
    checkpoint = Checkpoint(record, client, None, cgroup=FollowedCgroup(
        str(tmp_path / "proc"), str(tmp_path / "fs")))
    try:
        checkpoint.checkpoint()
        found = read_record(record.path.read_bytes())
        assert found.facts["oomKill"] == {"file": str(tmp_path / "fs/memory/user/memory.oom_control"),
                                          "count": 2, "cgroupVersion": 1}
        tree(tmp_path, {"proc/self/cgroup": "4:memory:/limited\n"})  # moved while it runs
        checkpoint.checkpoint()
        found = read_record(record.path.read_bytes())
        assert found.facts["oomKill"] == {"file": str(tmp_path / "fs/memory/limited/memory.oom_control"),
                                          "count": 7, "cgroupVersion": 1}
        assert found.vitals is not None and found.vitals.cgroup_limit == 256 * 1024 * 1024
    finally:
        record.close(remove=True)
