"""A sandbox that asks for no limit still has one of each: memory, processes, disk and /dev/shm, from the
server's defaults (options of ``cove serve``, or environment variables)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove import AsyncSandbox
from tests.conftest import CoveServer, until

MIB = 1024 * 1024
HOG = "b = bytearray(400 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print('survived')"
BOMB = "bomb() { bomb | bomb & }; bomb; sleep 2; echo done"


@pytest.fixture
def small_defaults(tmp_path: Path) -> Iterator[CoveServer]:
    """Defaults set both ways: memory and processes by option, disk and /dev/shm by environment variable."""
    server = CoveServer(
        tmp_path / "home",
        extra_env={"COVE_DEFAULT_DISK_MB": "20", "COVE_DEFAULT_SHM_MB": "8", "COVE_DEFAULT_PIDS": "4096"},
        extra_args=["--default-memory-mb", "128", "--default-pids", "64"],  # an option wins over its variable
    )
    server.start()
    yield server
    server.kill_all_sandboxes()
    server.kill(signal.SIGTERM)


async def test_a_sandbox_without_limits_gets_the_defaults_and_they_hold(small_defaults: CoveServer) -> None:
    connection = {"url": small_defaults.url, "api_key": small_defaults.api_key}
    async with await AsyncSandbox.create(**connection) as sandbox:
        limits = sandbox.info.limits
        assert (limits.memory_mb, limits.pids, limits.disk_mb, limits.shm_mb) == (128, 64, 20, 8)
        assert {"memory_mb", "pids", "disk_mb", "shm_mb"} <= set(sandbox.info.enforced_limits)

        hog = await sandbox.exec.run(["python3", "-c", HOG], timeout=60)
        assert hog.oom_killed and "survived" not in hog.stdout

        await sandbox.exec.run(BOMB, timeout=10, check_timeout=False)
        count = await sandbox.exec.run("ls /proc | grep -cE '^[0-9]+$'")
        assert int(count.stdout) <= 64
        await sandbox.exec.run("pkill -9 -u user -f bomb; true", timeout=10, check_timeout=False)

        shm = await sandbox.exec.run("head -c 20000000 /dev/zero > /dev/shm/fill; stat -c %s /dev/shm/fill")
        assert shm.exit_code != 0 or int(shm.stdout) <= 8 * MIB
        assert int((await sandbox.exec.run("df --output=size -B1M /dev/shm | tail -1")).stdout) == 8

        disk = await sandbox.exec.run("head -c 50000000 /dev/zero > /workspace/big")
        assert disk.exit_code != 0
        assert int((await sandbox.exec.run("stat -c %s /workspace/big")).stdout) == 20 * MIB
        await sandbox.exec.run("rm /workspace/big")

        # Asking for more (or less) than the default is the user's to choose.
        async with await AsyncSandbox.create(limits={"memory_mb": 1024}, **connection) as bigger:
            assert bigger.info.limits.memory_mb == 1024
            assert (await bigger.exec.run(["python3", "-c", HOG], timeout=60)).stdout == "survived\n"


async def test_a_default_of_zero_turns_that_default_off(tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home", extra_args=["--default-memory-mb", "0"])
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        async with await AsyncSandbox.create(**connection) as sandbox:
            assert sandbox.info.limits.memory_mb is None and "memory_mb" not in sandbox.info.enforced_limits
            assert sandbox.info.limits.pids == 1024  # the others keep their built-in defaults
            await until(sandbox, lambda info: info.state == "running")
    finally:
        server.kill_all_sandboxes()
        server.kill(signal.SIGTERM)


async def test_a_tiny_cpu_quota_slows_a_sandbox_but_does_not_stop_it_starting(tmp_path: Path) -> None:
    """Started cold (no pool), the quota binds once the supervisor is up: at 1% of a core its start alone would
    outlast the start timeout (found by the API fuzzer as a 500)."""
    server = CoveServer(tmp_path / "home", extra_env={"COVE_POOL_SIZE": "0"})
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        async with await AsyncSandbox.create(limits={"cpus": 0.01}, **connection) as sandbox:
            assert sandbox.info.state == "running" and "cpus" in sandbox.info.enforced_limits
            assert (await sandbox.exec.run("echo slow but here", timeout=120)).stdout == "slow but here\n"
    finally:
        server.kill_all_sandboxes()
        server.kill(signal.SIGTERM)
