"""Sandbox lifecycle through the API: create, get, list with filters, kill, timeouts."""

from __future__ import annotations

import time

import pytest

from cove import AsyncSandbox, SandboxNotRunning
from tests.conftest import CoveServer, until


async def test_create_get_list_and_kill(connection: dict[str, str]) -> None:
    sandbox = await AsyncSandbox.create(labels={"team": "blue", "run": "lifecycle"}, env={"A": "1"}, **connection)
    other = await AsyncSandbox.create(labels={"team": "red", "run": "lifecycle"}, **connection)
    try:
        assert sandbox.info.state == "running" and sandbox.info.env == {"A": "1"}
        blue = await AsyncSandbox.list(labels={"team": "blue", "run": "lifecycle"}, **connection)
        assert [s.id for s in blue] == [sandbox.id]
        both = await AsyncSandbox.list(labels={"run": "lifecycle"}, state="running", **connection)
        assert {s.id for s in both} == {sandbox.id, other.id}
        killed = await sandbox.kill()
        assert killed.state == "stopped" and killed.stop_reason == "killed"
        running = await AsyncSandbox.list(labels={"run": "lifecycle"}, state="running", **connection)
        assert [s.id for s in running] == [other.id]
        with pytest.raises(SandboxNotRunning):
            await sandbox.exec.run("true")
    finally:
        await other.kill()
        await sandbox.close()
        await other.close()


async def test_kill_frees_the_sandbox_directory(server: CoveServer, connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as sandbox:
        await sandbox.files.write("data.txt", "x" * 1000)
        root = server.home / "sandboxes" / sandbox.id
        assert root.exists()
    assert not root.exists()


async def test_absolute_timeout_kills_the_sandbox(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(timeout=1, **connection) as sandbox:
        await until(sandbox, lambda info: info.state == "stopped", within=10)
        assert sandbox.info.stop_reason == "timeout"


async def test_set_timeout_extends_the_deadline(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(timeout=2, **connection) as sandbox:
        extended = await sandbox.set_timeout(600)
        assert extended.expires_at is not None and extended.expires_at > time.time() + 500
        await sandbox.exec.run("sleep 3")
        assert (await sandbox.refresh()).state == "running"


async def test_idle_timeout_kills_an_unused_sandbox(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(idle_timeout=1, **connection) as sandbox:
        await until(sandbox, lambda info: info.state == "stopped", within=10)
        assert sandbox.info.stop_reason == "idle_timeout"
