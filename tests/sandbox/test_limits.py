"""Limits are enforced by the kernel and reported truthfully."""

from __future__ import annotations

from cove import AsyncSandbox
from tests.conftest import until

MIB = 1024 * 1024

HOG = "x = bytearray(0)\nwhile True:\n    x += bytearray(16 * 1024 * 1024)\n"


async def test_memory_hog_is_killed_and_the_reason_reported(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(limits={"memory_mb": 64}, **connection) as sandbox:
        assert sandbox.info.enforced_limits["memory_mb"].startswith("cgroup")
        result = await sandbox.exec.run(["python3", "-c", HOG], timeout=60)
        assert result.exit_code == 137 and result.signal == 9
        assert result.oom_killed
        assert (await sandbox.refresh()).oom_kills >= 1
        # The sandbox itself survives its hog.
        assert (await sandbox.exec.run("echo alive")).stdout == "alive\n"


async def test_fork_bomb_is_contained(connection: dict[str, str]) -> None:
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 2; echo done"
    async with await AsyncSandbox.create(limits={"pids": 64}, **connection) as sandbox:
        assert "pids" in sandbox.info.enforced_limits
        await sandbox.exec.run(bomb, timeout=10, check_timeout=False)
        count = await sandbox.exec.run("ls /proc | grep -cE '^[0-9]+$'")
        assert count.exit_code is not None
        assert int(count.stdout) <= 64
        await sandbox.exec.run("pkill -9 -u user -f bomb; true", timeout=10, check_timeout=False)
        assert (await sandbox.exec.run("echo alive", timeout=10)).stdout == "alive\n"


async def test_limits_left_out_take_the_server_defaults_and_are_enforced(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(limits={"cpus": 0.5, "disk_mb": 50}, **connection) as sandbox:
        limits, enforced = sandbox.info.limits, sandbox.info.enforced_limits
        assert (limits.cpus, limits.disk_mb) == (0.5, 50)
        # The defaults of a server started without options: nothing is unlimited unless asked to be.
        assert (limits.memory_mb, limits.pids, limits.shm_mb) == (2048, 1024, 256)
        assert set(enforced) == {"cpus", "disk_mb", "memory_mb", "pids", "shm_mb"}
        shm = await sandbox.exec.run("df --output=size -B1M /dev/shm | tail -1")
        assert int(shm.stdout) == 256


async def test_disk_quota_stops_a_file_larger_than_the_quota(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(limits={"disk_mb": 8}, **connection) as sandbox:
        result = await sandbox.exec.run("head -c 20000000 /dev/zero > /workspace/big")
        assert result.exit_code != 0
        assert int((await sandbox.exec.run("stat -c %s /workspace/big")).stdout) == 8 * MIB
        # The watchdog measures the file and lets the sandbox be: the failed write cost the write, nothing more.
        info = await until(sandbox, lambda info: (info.disk_used_bytes or 0) >= 8 * MIB, within=30)
        assert info.state == "running"
        assert (await sandbox.exec.run("rm /workspace/big && echo freed")).stdout == "freed\n"


async def test_files_beyond_the_quota_stop_the_sandbox(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(limits={"disk_mb": 8}, **connection) as sandbox:
        # Each file is under the per-file limit; together they are over the quota and its 1 MB tolerance.
        result = await sandbox.exec.run("for n in 1 2 3; do head -c 4000000 /dev/zero > /workspace/part$n; done")
        assert result.exit_code == 0
        info = await until(sandbox, lambda info: info.state == "stopped", within=30)
        assert info.stop_reason == "disk_limit"


async def test_each_sandbox_is_measured_for_its_own_files(connection: dict[str, str]) -> None:
    """The watchdog measures every sandbox of a pass with one ``du``: each still gets its own files' size."""
    async with (
        await AsyncSandbox.create(limits={"disk_mb": 8}, **connection) as over,
        await AsyncSandbox.create(limits={"disk_mb": 64}, **connection) as under,
    ):
        assert (await under.exec.run("head -c 6000000 /dev/zero > /workspace/six")).exit_code == 0
        assert (
            await over.exec.run("for n in 1 2 3; do head -c 4000000 /dev/zero > /workspace/p$n; done")
        ).exit_code == 0
        stopped = await until(over, lambda info: info.state == "stopped", within=30)
        assert stopped.stop_reason == "disk_limit"
        measured = await until(under, lambda info: (info.disk_used_bytes or 0) >= 6_000_000, within=30)
        assert measured.state == "running" and (measured.disk_used_bytes or 0) < 12 * MIB  # not the other's files


async def test_empty_files_count_against_the_disk_quota(connection: dict[str, str]) -> None:
    """Empty files take no block, but each takes one of the host filesystem's inodes: they count too."""
    async with await AsyncSandbox.create(limits={"disk_mb": 16}, **connection) as sandbox:
        made = "import os\nfor n in range(3000): os.close(os.open(f'/workspace/e{n}', os.O_CREAT | os.O_WRONLY))"
        assert (await sandbox.exec.run(["python3", "-c", made])).exit_code == 0
        blocks = int((await sandbox.exec.run("du -s --block-size=1 /workspace | cut -f1")).stdout)
        assert blocks < 1024 * 1024  # next to no bytes: a quota of bytes alone would never stop this
        stopped = await until(sandbox, lambda info: info.state == "stopped", within=30)
        assert stopped.stop_reason == "disk_limit"
