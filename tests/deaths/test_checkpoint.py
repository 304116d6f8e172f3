"""The checkpoint: what the crash record holds besides the running cell, read back as the next
kernel reads it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.deaths.kernel_deaths import KernelDeaths
from bugsnag_ipython.deaths.record import CrashRecord, RecordContents, read_record
from bugsnag_ipython.report.events import CellRun
from tests.payloads import API_KEY as KEY


@pytest.fixture
def recording(tmp_path: Path, shell: Any) -> Iterator[Any]:
    """Start a client with the options given, idle, and its kernel-deaths source; once the record
    is made and the look for dead kernels is over (the record is then checkpointed only when a
    test says), the client and the source."""
    made: list[tuple[Client, KernelDeaths]] = []

    def start(directory: Path = tmp_path, **options: Any) -> tuple[Client, KernelDeaths]:
        client = Client(Configuration(persistence_directory=str(directory), **options))
        client.tracker.enter_background()  # idle: dead kernels are looked for after a second
        deaths = KernelDeaths(client, shell, None, interval=3600)
        made.append((client, deaths))
        deaths.install()
        assert deaths.scanned.wait(10) and deaths.record is not None, "the record was never made"
        return client, deaths

    yield start
    for client, deaths in made:
        deaths.uninstall()
        client.shutdown(0)


def on_disk(record: CrashRecord | None) -> RecordContents:
    assert record is not None
    return read_record(record.path.read_bytes())


def test_the_session_and_its_counts_are_written_as_they_change(recording: Any) -> None:
    client, deaths = recording(api_key=KEY)
    client.launch(in_background=True)
    client.notify(ValueError("handled one"))
    session = on_disk(deaths.record).session
    assert session is not None and session.id == client.current_session().id
    assert (session.handled, session.unhandled) == (1, 0)
    assert on_disk(deaths.record).sending
    client.pause_session()
    assert on_disk(deaths.record).session is None  # paused: counted against none


def test_without_an_api_key_the_record_says_nothing_is_sent(recording: Any) -> None:
    _, deaths = recording()
    deaths.session_changed()
    assert not on_disk(deaths.record).sending


def test_a_checkpoint_writes_vitals_breadcrumbs_metadata_redacted_and_a_long_source(recording: Any) -> None:
    client, deaths = recording(api_key=KEY, app_version="2.0")
    client.leave_breadcrumb("loaded prices", {"rows": 120, "db_password": "hunter2"})
    client.metadata.add("dataset", {"source": "s3://bucket/key", "api_token": "t0ken"})
    long = "x = 1\n" * 400
    run = CellRun(9, "train", long, time.monotonic())
    client.cell_started(run)
    deaths.record.cell_started(run)
    before = time.monotonic()
    deaths.checkpoint()
    found = on_disk(deaths.record)
    assert found.vitals is not None and before <= found.vitals.seen_monotonic <= time.monotonic()
    assert found.vitals.rss > 1_000_000
    assert found.cell is not None and found.cell.source == long  # whole, not cut at 1 kB
    facts = found.facts
    assert facts["app"] == {"releaseStage": "production", "version": "2.0"}
    [crumb] = facts["breadcrumbs"]
    assert crumb["name"] == "loaded prices" and crumb["metaData"]["db_password"] == "[REDACTED]"
    assert facts["metadata"]["dataset"] == {"source": "s3://bucket/key", "api_token": "[REDACTED]"}
    assert "hunter2" not in deaths.record.path.read_bytes().decode("utf-8", "replace")


def test_a_kernel_moved_into_another_cgroup_has_that_cgroups_oom_count_as_baseline(
    tmp_path: Path, recording: Any
) -> None:
    from bugsnag_ipython.deaths.memory import FollowedCgroup
    from tests.deaths.test_memory import tree, v1_cgroup

    v1_cgroup(tmp_path, "user", 2)
    v1_cgroup(tmp_path, "limited", 7, limit=256 * 1024 * 1024)
    tree(tmp_path, {"proc/self/cgroup": "4:memory:/user\n"})
    _, deaths = recording(tmp_path / "outbox", api_key=KEY)
    deaths.cgroup = FollowedCgroup(str(tmp_path / "proc"), str(tmp_path / "fs"))  # as /proc shows it
    deaths.checkpoint()
    found = on_disk(deaths.record)
    assert found.facts["oomKill"] == {"file": str(tmp_path / "fs/memory/user/memory.oom_control"),
                                      "count": 2, "cgroupVersion": 1}
    tree(tmp_path, {"proc/self/cgroup": "4:memory:/limited\n"})  # moved while it runs
    deaths.checkpoint()
    found = on_disk(deaths.record)
    assert found.facts["oomKill"] == {"file": str(tmp_path / "fs/memory/limited/memory.oom_control"),
                                      "count": 7, "cgroupVersion": 1}
    assert found.vitals is not None and found.vitals.cgroup_limit == 256 * 1024 * 1024
