"""The warm pool: a create claims a sandbox started ahead of time, and gets exactly what it asked for.

Each test that means to claim first waits for the pool to be full (``GET /v1/pool?wait=``, which returns as soon
as it is), then checks that the sandbox it got is one the pool had ready: a claim, not a cold start.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cove import AsyncSandbox, SandboxNotFound
from tests.conftest import CoveServer, new_tenant, supervisor_pid, until

HOG = "x = bytearray(0)\nwhile True:\n    x += bytearray(16 * 1024 * 1024)\n"


async def pool(server: CoveServer, wait: float = 30) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {server.api_key}"}) as c:
        reply = await c.get("/v1/pool", params={"wait": wait}, timeout=wait + 10)
    reply.raise_for_status()
    info: dict[str, Any] = reply.json()
    return info


async def ready_pool(server: CoveServer) -> list[str]:
    info = await pool(server)
    assert info["size"] >= 1 and len(info["ready"]) == info["size"], info
    ready: list[str] = info["ready"]
    return ready


def supervisor_alive(sandbox_id: str) -> bool:
    return supervisor_pid(sandbox_id) is not None


async def test_claimed_sandbox_has_its_env_cwd_labels_and_timeouts(
    server: CoveServer, connection: dict[str, str]
) -> None:
    ready = await ready_pool(server)
    before = time.time()
    sandbox = await AsyncSandbox.create(
        env={"GREETING": "hello", "PATH": "/opt/none:/usr/bin:/bin"},
        cwd="/home/user",
        labels={"pool-test": "env", "team": "green"},
        timeout=600,
        idle_timeout=300,
        **connection,
    )
    try:
        assert sandbox.id in ready, "the create should have claimed a pooled sandbox"
        info = sandbox.info
        assert info.state == "running"
        assert info.env == {"GREETING": "hello", "PATH": "/opt/none:/usr/bin:/bin"} and info.cwd == "/home/user"
        assert info.labels == {"pool-test": "env", "team": "green"}
        assert info.created_at >= before and info.idle_timeout == 300
        assert info.expires_at is not None and before + 600 <= info.expires_at <= time.time() + 600
        assert set(info.enforced_limits) == {"memory_mb", "pids", "disk_mb", "shm_mb"}  # the defaults
        result = await sandbox.exec.run('echo "$GREETING $PATH $COVE_SANDBOX_ID"; pwd; id -un')
        assert result.stdout.splitlines() == [f"hello /opt/none:/usr/bin:/bin {sandbox.id}", "/home/user", "user"]
        listed = await AsyncSandbox.list(labels={"pool-test": "env", "team": "green"}, **connection)
        assert [s.id for s in listed] == [sandbox.id]
    finally:
        await sandbox.kill()
        await sandbox.close()


async def test_claimed_sandbox_enforces_memory_limit(server: CoveServer, connection: dict[str, str]) -> None:
    ready = await ready_pool(server)
    async with await AsyncSandbox.create(limits={"memory_mb": 64}, **connection) as sandbox:
        assert sandbox.id in ready
        assert sandbox.info.limits.memory_mb == 64
        assert sandbox.info.enforced_limits["memory_mb"].startswith("cgroup")
        result = await sandbox.exec.run(["python3", "-c", HOG], timeout=60)
        assert result.exit_code == 137 and result.oom_killed
        assert (await sandbox.refresh()).oom_kills >= 1
        assert (await sandbox.exec.run("echo alive")).stdout == "alive\n"


async def test_claimed_sandbox_contains_a_fork_bomb(server: CoveServer, connection: dict[str, str]) -> None:
    ready = await ready_pool(server)
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 2; echo done"
    async with await AsyncSandbox.create(limits={"pids": 64}, **connection) as sandbox:
        assert sandbox.id in ready
        assert sandbox.info.limits.pids == 64 and "pids" in sandbox.info.enforced_limits
        await sandbox.exec.run(bomb, timeout=10, check_timeout=False)
        count = await sandbox.exec.run("ls /proc | grep -cE '^[0-9]+$'")
        assert int(count.stdout) <= 64
        await sandbox.exec.run("pkill -9 -u user -f bomb; true", timeout=10, check_timeout=False)
        assert (await sandbox.exec.run("echo alive", timeout=10)).stdout == "alive\n"


async def test_claimed_sandbox_applies_the_disk_quota(server: CoveServer, connection: dict[str, str]) -> None:
    ready = await ready_pool(server)
    async with await AsyncSandbox.create(limits={"disk_mb": 8, "cpus": 0.5}, **connection) as sandbox:
        assert sandbox.id in ready
        assert {"disk_mb", "cpus"} <= set(sandbox.info.enforced_limits)
        result = await sandbox.exec.run("head -c 20000000 /dev/zero > /workspace/big")
        assert result.exit_code != 0
        assert int((await sandbox.exec.run("stat -c %s /workspace/big")).stdout) == 8 * 1024 * 1024


async def test_claimed_sandbox_times_out(server: CoveServer, connection: dict[str, str]) -> None:
    ready = await ready_pool(server)
    async with await AsyncSandbox.create(timeout=1, **connection) as absolute:
        assert absolute.id in ready
        await until(absolute, lambda info: info.state == "stopped", within=10)
        assert absolute.info.stop_reason == "timeout"
    ready = await ready_pool(server)
    async with await AsyncSandbox.create(idle_timeout=1, **connection) as idle:
        assert idle.id in ready
        await until(idle, lambda info: info.state == "stopped", within=10)
        assert idle.info.stop_reason == "idle_timeout"


async def test_pooled_sandboxes_are_invisible(server: CoveServer, connection: dict[str, str]) -> None:
    ready = await ready_pool(server)
    listed = {s.id for s in await AsyncSandbox.list(**connection)}
    assert not listed & set(ready)
    for sandbox_id in ready:
        assert supervisor_alive(sandbox_id)
        with pytest.raises(SandboxNotFound):
            await AsyncSandbox.connect(sandbox_id, **connection)


async def test_specs_the_pool_cannot_serve_start_cold(server: CoveServer, connection: dict[str, str]) -> None:
    ready = await ready_pool(server)
    # A /dev/shm of another size than the pooled sandboxes' (fixed when bwrap starts) needs a sandbox of its own.
    async with await AsyncSandbox.create(limits={"shm_mb": 32}, **connection) as sandbox:
        assert sandbox.id not in ready
        assert (await sandbox.exec.run("echo cold")).stdout == "cold\n"
    assert set(ready) <= set((await pool(server, wait=0))["ready"])


async def test_pool_size_zero_disables_the_pool(tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home", extra_env={"COVE_POOL_SIZE": "0"})
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        assert await pool(server, wait=0) == {"size": 0, "ready": [], "filling": False, "failures": 0}
        async with await AsyncSandbox.create(env={"A": "1"}, limits={"memory_mb": 64}, **connection) as sandbox:
            assert (await sandbox.exec.run("echo $A")).stdout == "1\n"
            assert "memory_mb" in sandbox.info.enforced_limits
        assert (await pool(server, wait=0))["ready"] == []
        assert {p.name for p in (server.home / "sandboxes").iterdir()} == set()
    finally:
        server.kill_all_sandboxes()
        server.kill(signal.SIGTERM)


async def test_pool_is_drained_on_shutdown_and_replaced_after_a_sigkill(tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home", extra_env={"COVE_POOL_SIZE": "1"})
    server.start()
    try:
        [first] = await ready_pool(server)
        server.kill(signal.SIGTERM)  # a clean stop drains the pool
        assert not supervisor_alive(first) and not (server.home / "sandboxes" / first).exists()

        server.start()
        connection = {"url": server.url, "api_key": server.api_key}
        claimed = await AsyncSandbox.create(**connection)
        [second] = await ready_pool(server)
        pid = supervisor_pid(second)
        assert pid is not None
        exited = os.pidfd_open(pid)  # readable once that process has exited
        server.kill()  # SIGKILL: the unclaimed pooled sandbox ends itself; a claimed one lives on
        readable, _, _ = await asyncio.to_thread(select.select, [exited], [], [], 10)
        os.close(exited)
        assert readable, "an unclaimed pooled sandbox outlived its server"
        assert supervisor_alive(claimed.id)
        server.start()  # the next server cleans up what is left of it and starts a pool of its own
        [third] = await ready_pool(server)
        assert third not in (first, second)
        assert not supervisor_alive(second) and not (server.home / "sandboxes" / second).exists()
        assert [s.id for s in await AsyncSandbox.list(**connection)] == [claimed.id]
        await claimed.kill()
        await claimed.close()
        # Uids are never reused, not even those of pooled sandboxes that were never claimed.
        async with await AsyncSandbox.create(**connection) as sandbox:
            assert sandbox.id == third
            uid = int((await sandbox.exec.run("id -u")).stdout)
        assert uid >= 200_003
    finally:
        server.kill_all_sandboxes()
        server.kill(signal.SIGTERM)
    assert not any((server.home / "sandboxes").iterdir())


async def test_a_fork_claims_a_pooled_sandbox_and_sees_only_the_checkpoint(
    server: CoveServer, connection: dict[str, str]
) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.files.write("sub/a.txt", "from the origin\n")
        await origin.files.write("/home/user/.claude/note", "history\n")
        checkpoint = await origin.checkpoint()
        ready = await ready_pool(server)
        # A cwd that exists only in the checkpoint: the files must be in place before the claim configures it.
        async with await AsyncSandbox.create(from_checkpoint=checkpoint.id, cwd="/workspace/sub", **connection) as fork:
            assert fork.id in ready, "the fork should have claimed a pooled sandbox"
            seen = await fork.exec.run("pwd; cat a.txt ~/.claude/note; ls -A /workspace")
            assert seen.stdout == "/workspace/sub\nfrom the origin\nhistory\nsub\n"
            await fork.files.write("/workspace/fork-only", "f")
            await origin.files.write("/workspace/origin-only", "o")
            assert (await fork.exec.run("ls /workspace")).stdout == "fork-only\nsub\n"
            assert (await origin.exec.run("ls /workspace")).stdout == "origin-only\nsub\n"
            await fork.kill()
            mounts = Path("/proc/self/mountinfo").read_text()
            assert fork.id not in mounts and not (server.home / "sandboxes" / fork.id).exists()


async def test_a_claimed_sandbox_is_its_claimers_tenants(server: CoveServer) -> None:
    """A pooled sandbox is nobody's until claimed; then its creator's tenant owns it, and no other tenant sees it."""
    ready = await ready_pool(server)
    owner, other = new_tenant(server, "claimer"), new_tenant(server, "bystander")
    async with await AsyncSandbox.create(**owner.connection(server)) as sandbox:
        assert sandbox.id in ready, "the create should have claimed a pooled sandbox"
        assert sandbox.info.tenant_id == owner.id
        with pytest.raises(SandboxNotFound):
            await AsyncSandbox.connect(sandbox.id, **other.connection(server))
        assert sandbox.id not in {s.id for s in await AsyncSandbox.list(**other.connection(server))}
