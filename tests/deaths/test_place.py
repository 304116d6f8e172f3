"""Where the live crash record goes: the persistence directory's `kernels/` on a local disk, a
private runtime folder in memory when the directory is on a network or FUSE filesystem, and
the dead-kernel scan finding records in both."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.deaths import place
from bugsnag_ipython.deaths.place import (
    NoRecord,
    filesystem_of,
    is_network,
    live_folder,
    record_folders,
)
from bugsnag_ipython.deaths.record import CrashRecord
from bugsnag_ipython.deaths.scan import report_dead_kernels
from tests.deaths.conftest import received, sending_client

ROOT = str(Path(__file__).resolve().parents[2])

MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 253:0 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
30 27 0:40 / /home rw,relatime shared:1 - nfs4 server:/export/home rw,vers=4.2
31 30 8:17 / /home/alice/local rw,relatime - ext4 /dev/sdb1 rw
32 27 0:42 / /mnt/my\040drive rw,nosuid - fuse.sshfs alice@host:/ rw,user_id=1000
33 27 8:33 / /mnt/my rw - ext4 /dev/sdc1 rw
34 27 0:43 / /scratch rw - tmpfs tmpfs rw,size=1024k
35 27 8:49 / /data rw - ext4 /dev/sdd1 rw
36 35 0:44 / /data rw master:2 - cifs //srv/data rw
37 27 0:45 / /mnt/tab\011and\134slash rw - 9p share rw
"""


def test_mountinfo_lines_give_mount_points_and_types() -> None:
    assert filesystem_of("/mnt/my drive", MOUNTINFO) == "fuse.sshfs"
    assert filesystem_of("/home", MOUNTINFO) == "nfs4"
    assert filesystem_of("/mnt/tab\tand\\slash", MOUNTINFO) == "9p"  # mountinfo's octal escapes undone
    assert filesystem_of("/", "garbage without the separator\n\n") is None


@pytest.mark.parametrize(("path", "fstype"), [
    ("/home", "nfs4"),
    ("/home/alice/notebooks", "nfs4"),
    ("/home/alice/local/cache", "ext4"),  # a local disk mounted inside the NFS home
    ("/homeless", "overlay"),  # a mount point holds only paths below it, not names it begins
    ("/mnt/my drive/project", "fuse.sshfs"),
    ("/mnt/my/project", "ext4"),
    ("/mnt/mydrive", "overlay"),
    ("/scratch/run", "tmpfs"),
    ("/var/cache/bugsnag-ipython", "overlay"),
    ("/data/set", "cifs"),  # mounted over the ext4 one: the later mount is the one seen
    ("/mnt/tab\tand\\slash/x", "9p"),
])
def test_the_longest_mount_point_holding_a_path_gives_its_filesystem(path: str, fstype: str) -> None:
    assert filesystem_of(path, MOUNTINFO) == fstype


def test_network_and_fuse_filesystems_are_told_from_local_ones() -> None:
    network = ["nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "afs",
               "gpfs", "fuse", "fuse.sshfs", "fuse.s3fs"]
    local = ["ext4", "xfs", "btrfs", "overlay", "tmpfs", "zfs"]
    assert all(is_network(kind) for kind in network)
    assert not any(is_network(kind) for kind in local)


@pytest.fixture
def on_nfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A persistence directory the mounts say is on NFS, and a runtime directory of this user's."""
    persistence = tmp_path / "home" / "cache"
    sample = tmp_path / "mountinfo"
    real_home = os.path.realpath(tmp_path / "home").replace(" ", "\\040")
    sample.write_text(MOUNTINFO + f"40 27 0:50 / {real_home} rw - nfs4 server:/h rw\n")
    monkeypatch.setattr(place, "MOUNTINFO", str(sample))
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setattr(place, "SHARED_MEMORY", str(tmp_path / "shm"))
    return persistence


def test_a_local_persistence_directory_keeps_the_record(tmp_path: Path) -> None:
    record = CrashRecord(tmp_path, launched_wall=time.time(), launched_monotonic=time.monotonic())
    try:
        assert record.path.parent == tmp_path / "kernels"
    finally:
        record.close(remove=True)


def test_a_record_of_a_directory_on_nfs_lives_in_a_private_runtime_folder(on_nfs: Path,
                                                                          tmp_path: Path) -> None:
    record = CrashRecord(on_nfs, launched_wall=time.time(), launched_monotonic=time.monotonic())
    try:
        record.catch_faults()
        folder = record.path.parent
        assert folder.parent.parent == tmp_path / "run" / "bugsnag-ipython"
        assert folder.name == "kernels" and record.faults_path.parent == folder
        for level in (folder, folder.parent, folder.parent.parent):
            facts = os.stat(level)
            assert stat.S_IMODE(facts.st_mode) == 0o700 and facts.st_uid == os.geteuid()
        assert not (on_nfs / "kernels").exists()  # nothing of the live record on the server
        # Two kernels of one persistence directory share the folder; another directory has its own.
        assert live_folder(on_nfs)[0] == folder
        assert live_folder(on_nfs.parent / "other")[0] != folder
    finally:
        record.close(remove=True)


def test_without_a_runtime_directory_the_folder_is_in_shared_memory(on_nfs: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shm").mkdir(mode=0o1777)
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    folder, where = live_folder(on_nfs)
    assert folder.parent.parent == tmp_path / "shm" / f"bugsnag-ipython-{os.geteuid()}"
    assert where.startswith(f"the runtime folder {folder} (the persistence directory {on_nfs} is on nfs4")


def test_a_planted_link_in_shared_memory_means_no_record(on_nfs: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shm").mkdir(mode=0o1777)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "shm" / f"bugsnag-ipython-{os.geteuid()}").symlink_to(tmp_path / "elsewhere")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    with pytest.raises(NoRecord) as refused:
        CrashRecord(on_nfs, launched_wall=time.time(), launched_monotonic=time.monotonic())
    assert str(refused.value).startswith(
        f"Kernel deaths are not recorded: the persistence directory {on_nfs} is on a network "
        "filesystem (nfs4) and no private runtime folder can be made for the crash record (")
    assert str(refused.value).endswith("set BUGSNAG_PERSISTENCE_DIRECTORY to a directory on a local disk.")
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="a folder of another user's needs root to make")
def test_a_runtime_folder_of_another_user_is_neither_used_nor_scanned(on_nfs: Path, tmp_path: Path) -> None:
    planted = []
    for base in (tmp_path / "run" / "bugsnag-ipython", tmp_path / "shm" / f"bugsnag-ipython-{os.geteuid()}"):
        (base / place.digest(on_nfs) / "kernels").mkdir(parents=True)
        planted.append(base)
    os.chown(planted[0], 65534, 65534)
    record = CrashRecord(on_nfs, launched_wall=time.time(), launched_monotonic=time.monotonic())
    try:
        assert record.path.is_relative_to(planted[1])  # the runtime directory's is another user's
        assert record_folders(on_nfs) == [on_nfs / "kernels", record.path.parent]
    finally:
        record.close(remove=True)
    os.chown(planted[1], 65534, 65534)
    with pytest.raises(NoRecord, match="is another user's or cannot be made private"):
        CrashRecord(on_nfs, launched_wall=time.time(), launched_monotonic=time.monotonic())
    assert record_folders(on_nfs) == [on_nfs / "kernels"]


_DYING = r"""
import os, sys, time
sys.path.insert(0, {root!r})
from bugsnag_ipython.deaths import place
place.MOUNTINFO = {mountinfo!r}
from bugsnag_ipython.core.sessions import SessionSnapshot
from bugsnag_ipython.deaths.record import CrashRecord
from bugsnag_ipython.report.events import CellRun
record = CrashRecord({directory!r}, launched_wall=time.time() - 60, launched_monotonic=time.monotonic() - 60)
session = SessionSnapshot("0f1e2d3c-1111-4222-8333-444455556666", 1_800_000_000.0, 0, 0, False)
record.session(session, sending=True)
record.cell_started(CellRun(4, "fit", "model.fit(data)", time.monotonic() - 5))
record.vitals(seen_monotonic=time.monotonic(), seen_wall=time.time(), rss=123_456_789,
              peak_rss=223_456_789, cgroup_usage=-1, cgroup_limit=-1)
os.write(1, (str(record.path) + "\n").encode())
time.sleep(60)
"""


def test_a_record_left_in_the_runtime_folder_is_found_and_reported_once(on_nfs: Path, tmp_path: Path,
                                                                        collector: Any) -> None:
    code = _DYING.format(root=ROOT, mountinfo=place.MOUNTINFO, directory=str(on_nfs))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    left = Path(process.stdout.readline().strip())
    process.kill()  # SIGKILL: its lock goes, its record stays
    process.wait(10)
    assert left.parent.parent.parent == tmp_path / "run" / "bugsnag-ipython"

    client = sending_client(collector, on_nfs)
    own = CrashRecord(on_nfs, launched_wall=time.time(), launched_monotonic=time.monotonic())
    try:
        assert len(report_dead_kernels(client, str(on_nfs), own)) == 1
        assert len(report_dead_kernels(client, str(on_nfs), own)) == 0
        events = received(client, collector)
    finally:
        own.close(remove=True)
        client.shutdown(0)
    assert [e["exceptions"][0]["message"] for e in events] == ["killed while running In [4]"]
    assert list(left.parent.iterdir()) == []


def test_a_record_left_in_the_persistence_directory_is_still_found(on_nfs: Path) -> None:
    """A record an earlier kernel left in `kernels/` (the directory was local then, or the
    package older) is reported by a kernel whose own record is in the runtime folder."""
    legacy = on_nfs / "kernels"
    code = _DYING.format(root=ROOT, mountinfo="/nonexistent", directory=str(on_nfs))  # taken for local
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert Path(process.stdout.readline().strip()).parent == legacy
    process.kill()
    process.wait(10)
    client = Client(Configuration(persistence_directory=str(on_nfs)))
    own = CrashRecord(on_nfs, launched_wall=time.time(), launched_monotonic=time.monotonic())
    try:
        assert own.path.parent != legacy
        assert len(report_dead_kernels(client, str(on_nfs), own)) == 1
    finally:
        own.close(remove=True)
    assert list(legacy.iterdir()) == []


def test_unreadable_mounts_are_taken_for_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(place, "MOUNTINFO", str(tmp_path / "missing"))
    assert live_folder(tmp_path) == (tmp_path / "kernels", f"the persistence directory {tmp_path}")
