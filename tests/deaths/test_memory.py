"""The OOM killer's count and the kernel's memory, read from cgroup v1 and v2 trees as Linux
lays them out (made here in a temporary directory), and from this machine."""

from __future__ import annotations

from pathlib import Path

from bugsnag_ipython.deaths.memory import (
    FollowedCgroup,
    oom_kills_at,
    peak_resident_bytes,
    resident_bytes,
)


def tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cgroup_v1_counts_oom_kills_in_memory_oom_control(tmp_path: Path) -> None:
    tree(tmp_path, {
        "proc/self/cgroup": "9:name=systemd:/\n4:memory:/kernels/k1\n0::/\n",
        "fs/memory/kernels/k1/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        "fs/memory/kernels/k1/memory.usage_in_bytes": "1740881920\n",
        "fs/memory/kernels/k1/memory.limit_in_bytes": "9223372036854771712\n",
    })
    cgroup = FollowedCgroup(str(tmp_path / "proc"), str(tmp_path / "fs")).cgroup
    assert cgroup is not None and cgroup.version == 1
    assert cgroup.oom_kills() == 2
    assert cgroup.usage() == 1740881920
    assert cgroup.limit() == -1  # v1's "no limit"


def test_cgroup_v2_counts_oom_kills_in_memory_events(tmp_path: Path) -> None:
    tree(tmp_path, {
        "proc/self/cgroup": "0::/user.slice/kernel\n",
        "fs/user.slice/kernel/memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        "fs/user.slice/kernel/memory.current": "52428800\n",
        "fs/user.slice/kernel/memory.max": "max\n",
    })
    cgroup = FollowedCgroup(str(tmp_path / "proc"), str(tmp_path / "fs")).cgroup
    assert cgroup is not None and cgroup.version == 2
    assert (cgroup.oom_kills(), cgroup.usage(), cgroup.limit()) == (1, 52428800, -1)


def test_no_cgroup_no_answer(tmp_path: Path) -> None:
    tree(tmp_path, {"proc/self/cgroup": "0::/\n"})
    assert FollowedCgroup(str(tmp_path / "proc"), str(tmp_path / "fs")).cgroup is None
    assert FollowedCgroup(str(tmp_path / "nowhere"), str(tmp_path / "fs")).cgroup is None


def v1_cgroup(root: Path, name: str, oom_kills: int, limit: int = 9223372036854771712) -> None:
    tree(root, {
        f"fs/memory/{name}/memory.oom_control": f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom_kills}\n",
        f"fs/memory/{name}/memory.usage_in_bytes": "1740881920\n",
        f"fs/memory/{name}/memory.limit_in_bytes": f"{limit}\n",
    })


def test_a_process_moved_into_another_cgroup_is_followed_with_that_cgroups_count(tmp_path: Path) -> None:
    v1_cgroup(tmp_path, "user", 2)
    v1_cgroup(tmp_path, "limited", 7, limit=512 * 1024 * 1024)
    tree(tmp_path, {"proc/self/cgroup": "5:cpu:/\n4:memory:/user\n0::/\n"})
    followed = FollowedCgroup(str(tmp_path / "proc"), str(tmp_path / "fs"))
    assert followed.cgroup is not None and followed.cgroup.oom_file.parent.name == "user"
    assert followed.baseline == 2
    assert followed.follow() is False  # not moved
    tree(tmp_path, {"proc/self/cgroup": "5:cpu:/batch\n4:memory:/user\n0::/\n"})
    assert followed.follow() is False and followed.baseline == 2  # another controller's cgroup
    v1_cgroup(tmp_path, "user", 3)  # a kill in the cgroup it is in: the evidence, not a new baseline
    tree(tmp_path, {"proc/self/cgroup": "5:cpu:/batch\n4:memory:/limited\n0::/\n"})
    assert followed.follow() is True
    assert followed.cgroup is not None and followed.cgroup.limit() == 512 * 1024 * 1024
    assert followed.baseline == 7  # the new cgroup's count when the process was first seen in it
    (tmp_path / "proc/self/cgroup").unlink()
    assert followed.follow() is True and followed.cgroup is None and followed.baseline is None


def test_this_process_memory() -> None:
    resident = resident_bytes()
    assert resident > 1_000_000
    assert peak_resident_bytes() >= resident * 0.5


def test_a_dead_kernels_counter_file_is_read_only_if_it_is_one(tmp_path: Path) -> None:
    tree(tmp_path, {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
                    "notes.txt": "oom_kill 9\n"})
    assert oom_kills_at(str(tmp_path / "memory.oom_control")) == 5
    assert oom_kills_at(str(tmp_path / "notes.txt")) is None
    assert oom_kills_at(str(tmp_path / "gone" / "memory.events")) is None
