"""Quotas: each one a tenant passes is refused with 429 ``quota_exceeded``, naming the quota and its value;
``/v1/usage`` reports what the tenant uses against them, and what its agents have spent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cove import AsyncSandbox, QuotaExceeded
from tests.conftest import CoveServer, new_tenant, serving


def _refused(reply_json: dict[str, object], quota: str, value: str) -> None:
    error = reply_json["error"]
    assert isinstance(error, dict) and error["code"] == "quota_exceeded"
    assert f"quota {quota} is {value}" in str(error["message"]), error


def test_running_sandboxes_and_their_memory(server: CoveServer) -> None:
    tenant = new_tenant(server, "small", {"running_sandboxes": 2, "running_memory_mb": 768})
    with server.http(api_key=tenant.key) as client:
        first = client.post("/v1/sandboxes", json={"network": "none", "limits": {"memory_mb": 512}})
        assert first.status_code == 201
        second = client.post("/v1/sandboxes", json={"network": "none", "limits": {"memory_mb": 512}})
        assert second.status_code == 429
        _refused(second.json(), "running_memory_mb", "768")
        small = client.post("/v1/sandboxes", json={"network": "none", "limits": {"memory_mb": 256}})
        assert small.status_code == 201
        third = client.post("/v1/sandboxes", json={"network": "none", "limits": {"memory_mb": 16}})
        assert third.status_code == 429
        _refused(third.json(), "running_sandboxes", "2")
        used = client.get("/v1/usage").json()
        assert (used["used"]["running_sandboxes"], used["used"]["running_memory_mb"]) == (2, 768)
        assert used["quotas"]["running_sandboxes"] == 2
        client.delete(f"/v1/sandboxes/{first.json()['id']}")  # a stopped sandbox makes room again
        again = client.post("/v1/sandboxes", json={"network": "none", "limits": {"memory_mb": 512}})
        assert again.status_code == 201
        for created in (small, again):
            client.delete(f"/v1/sandboxes/{created.json()['id']}")


def test_the_largest_limits_a_sandbox_may_ask_for(server: CoveServer) -> None:
    tenant = new_tenant(server, "bounded", {"max_limits": {"memory_mb": 512, "cpus": 1}})
    with server.http(api_key=tenant.key) as client:
        asked = client.post("/v1/sandboxes", json={"network": "none", "limits": {"memory_mb": 1024}})
        assert asked.status_code == 429
        _refused(asked.json(), "max_limits.memory_mb", "512")
        _refused(client.post("/v1/sandboxes", json={"limits": {"cpus": 2}}).json(), "max_limits.cpus", "1")
        defaulted = client.post("/v1/sandboxes", json={"network": "none"}).json()
        # The server's default (2048 MiB, no CPU limit) lowered to the tenant's largest.
        assert (defaulted["limits"]["memory_mb"], defaulted["limits"]["cpus"]) == (512, 1)
        client.delete(f"/v1/sandboxes/{defaulted['id']}")


async def test_concurrent_agent_sessions(server: CoveServer) -> None:
    tenant = new_tenant(server, "one agent", {"agent_sessions": 1})
    async with await AsyncSandbox.create(**tenant.connection(server), network="none") as sandbox:
        first = await sandbox.agent.start()
        with pytest.raises(QuotaExceeded, match="quota agent_sessions is 1") as refused:
            await sandbox.agent.start()
        assert refused.value.status == 429
        await first.kill()
        second = await sandbox.agent.start(prompt="@say within the quota again")
        done = await asyncio.wait_for(second.done, 60)
        await second.kill()
    with server.http(api_key=tenant.key) as client:
        report = client.get("/v1/usage").json()
    assert report["used"]["agent_sessions"] == 0
    assert report["metered_usage"]["output_tokens"] >= done["usage"]["output_tokens"] > 0
    assert report["total_cost_usd"] > 0


def test_checkpoints_disk(server: CoveServer) -> None:
    tenant = new_tenant(server, "tight disk", {"checkpoint_mb": 1})
    with server.http(api_key=tenant.key) as client:
        sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        base = f"/v1/sandboxes/{sandbox}"
        client.put(f"{base}/files", params={"path": "small.txt"}, content=b"x" * 1024).raise_for_status()
        kept = client.post(f"{base}/checkpoints", json={"name": "small"})
        assert kept.status_code == 201
        client.put(f"{base}/files", params={"path": "large.bin"}, content=b"y" * (2 << 20)).raise_for_status()
        refused = client.post(f"{base}/checkpoints", json={"name": "large"})
        assert refused.status_code == 429
        _refused(refused.json(), "checkpoint_mb", "1")
        names = [c["name"] for c in client.get(f"{base}/checkpoints").json()["checkpoints"]]
        assert names == ["small"]  # the one past the quota was not kept
        assert 0 < client.get("/v1/usage").json()["used"]["checkpoint_mb"] < 1
        client.delete(f"/v1/checkpoints/{kept.json()['id']}")
        client.delete(base)


def test_a_keys_quotas_change_for_what_it_asks_next(server: CoveServer) -> None:
    tenant = new_tenant(server, "growing", {"running_sandboxes": 1})
    with server.http(api_key=tenant.key) as client:
        first = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        assert client.post("/v1/sandboxes", json={"network": "none"}).status_code == 429
        with server.http() as admin:
            admin.patch(f"/v1/keys/{tenant.id}", json={"quotas": {"running_sandboxes": 2}}).raise_for_status()
        second = client.post("/v1/sandboxes", json={"network": "none"})
        assert second.status_code == 201
        for sandbox in (first, second.json()["id"]):
            client.delete(f"/v1/sandboxes/{sandbox}")


def test_the_admin_has_no_quota(server: CoveServer) -> None:
    with server.http() as admin:
        report = admin.get("/v1/usage").json()
    assert report["quotas"] is None


def test_the_servers_defaults_for_new_keys_come_from_its_options_and_environment(tmp_path: Path) -> None:
    """As the --default-* limits: an option wins over its variable, and 0 turns a default off."""
    env = {"COVE_QUOTA_AGENT_SESSIONS": "3", "COVE_QUOTA_RUNNING_SANDBOXES": "7", "COVE_QUOTA_MAX_CPUS": "2"}
    args = ["--quota-running-sandboxes", "1", "--quota-checkpoint-mb", "0", "--quota-max-memory-mb", "512"]
    with serving(tmp_path / "home", env, args) as server:
        quotas = new_tenant_quotas(server)
    assert (quotas["running_sandboxes"], quotas["agent_sessions"], quotas["checkpoint_mb"]) == (1, 3, None)
    assert (quotas["max_limits"]["memory_mb"], quotas["max_limits"]["cpus"]) == (512, 2)
    assert quotas["running_memory_mb"] == 20480  # the built-in default, set by neither


def new_tenant_quotas(server: CoveServer) -> dict[str, Any]:
    with server.http() as admin:
        quotas: dict[str, Any] = admin.post("/v1/keys", json={"name": "defaults"}).json()["quotas"]
    return quotas
