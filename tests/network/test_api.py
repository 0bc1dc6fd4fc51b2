"""Network modes through Cove's API, end to end: real sandboxes (claimed from the warm pool) against the test
hosts, the host's own services and each other — what each mode and rule kind reaches and what it never does."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cove import AsyncSandbox, Conflict, InvalidRequest, NetworkModeForbidden
from cove.testhosts import PROBE, TestNet
from tests.conftest import CoveServer
from tests.network.conftest import DNS, METADATA, OTHER, PORT, PRIVATE, PUBLIC, HostServices


@pytest.fixture(scope="module")
def cove(testnet: TestNet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoveServer]:
    """A server whose sandboxes resolve names through the DNS server on a test host."""
    server = CoveServer(
        tmp_path_factory.mktemp("net") / "home",
        extra_env={"COVE_DNS_UPSTREAM": f"{DNS}:53"},
        extra_args=["--allow-host-network"],
    )
    server.start()
    yield server
    server.kill_all_sandboxes()
    server.kill(signal.SIGTERM)
    assert "Traceback" not in server.log_path.read_text(errors="replace")


@pytest.fixture
async def connect(cove: CoveServer) -> AsyncIterator[dict[str, str]]:
    yield {"url": cove.url, "api_key": cove.api_key}


async def reach(sandbox: AsyncSandbox, *targets: tuple[str, int, str]) -> list[object]:
    """What each target answers from inside the sandbox (its name, or an error)."""
    result = await sandbox.exec.run(["python3", "-c", PROBE, "1.0", json.dumps(targets)], timeout=60)
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout).values())


def blocked(answer: object) -> bool:
    return isinstance(answer, str) and answer.startswith("error")


async def test_egress_reaches_the_internet_and_never_the_host_private_ranges_or_other_sandboxes(
    cove: CoveServer, connect: dict[str, str], host_services: HostServices
) -> None:
    with cove.http() as client:
        ready = client.get("/v1/pool", params={"wait": 30}).json()["ready"]
    async with await AsyncSandbox.create(**connect) as sandbox, await AsyncSandbox.create(**connect) as other:
        assert sandbox.id in ready, "an egress create is a claim of a pooled sandbox"
        assert sandbox.info.network.model_dump() == {"mode": "egress", "allow": [], "deny": []}
        await other.exec.background(["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"])
        other_address = (await other.exec.run("ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1")).stdout
        host = str(host_services.address)
        answers = await reach(
            sandbox,
            (PUBLIC, PORT, "tcp"),
            (PUBLIC, PORT, "udp"),
            ("127.0.0.1", cove.port, "tcp"),  # the Cove API: the sandbox's loopback is its own
            (host, cove.port, "tcp"),  # the Cove API on the host's own address
            (host, host_services.any_port, "tcp"),  # another service of the host
            ("10.200.0.1", host_services.any_port, "tcp"),  # the host through the gateway
            (METADATA, 80, "tcp"),
            (PRIVATE, PORT, "tcp"),
            (other_address.strip(), 8000, "tcp"),
        )
        assert answers[:2] == [PUBLIC, PUBLIC]
        assert all(blocked(answer) for answer in answers[2:]), answers


async def test_allow_deny_and_name_rules_and_a_change_at_run_time(connect: dict[str, str]) -> None:
    policy = {"mode": "egress", "allow": [f"{PRIVATE}/32", "allowed.test"], "deny": []}
    async with await AsyncSandbox.create(network=policy, **connect) as sandbox:
        assert sandbox.info.network.allow == [PRIVATE, "allowed.test"]
        allowed, private, other = await reach(
            sandbox, ("allowed.test", PORT, "tcp"), (PRIVATE, PORT, "tcp"), (OTHER, PORT, "tcp")
        )
        assert allowed == PUBLIC and private == PRIVATE and blocked(other)
        answers = await reach(sandbox, ("other.test", PORT, "tcp"), (METADATA, 80, "tcp"))
        assert all(blocked(answer) for answer in answers), answers

        # Deny wins, and the change holds at once: the whole internet but OTHER.
        updated = await sandbox.network.update(deny=[OTHER])
        assert (updated.allow, updated.deny) == ([], [OTHER])
        assert (await sandbox.refresh()).network.deny == [OTHER]
        public, other, private = await reach(
            sandbox, (PUBLIC, PORT, "tcp"), (OTHER, PORT, "tcp"), (PRIVATE, PORT, "tcp")
        )
        assert public == PUBLIC and blocked(other) and blocked(private)


async def test_rules_and_modes_that_cannot_be_are_refused(cove: CoveServer, server: CoveServer) -> None:
    connection = {"url": cove.url, "api_key": cove.api_key}
    with pytest.raises(InvalidRequest) as bad_rule:
        await AsyncSandbox.create(network={"mode": "egress", "allow": ["10.0.0.1/8"]}, **connection)
    assert "network.allow[0]" in str(bad_rule.value)
    with cove.http() as client:
        ready = client.get("/v1/pool", params={"wait": 30}).json()["ready"]
    async with await AsyncSandbox.create(network="none", **connection) as offline:
        # Pooled sandboxes have the egress network until a claim says otherwise: this one's is gone at once.
        assert offline.id in ready
        assert blocked((await reach(offline, (PUBLIC, PORT, "tcp")))[0])
        links = (await offline.exec.run("ip -o link show")).stdout
        assert ": lo:" in links and "state UP" not in links, links  # loopback is UNKNOWN; a live veth is UP
        with pytest.raises(Conflict):
            await offline.network.update(allow=[PUBLIC])
    # A server started without --allow-host-network refuses "host" (the suite's shared server).
    with pytest.raises(NetworkModeForbidden):
        await AsyncSandbox.create(network="host", url=server.url, api_key=server.api_key)


async def test_host_mode_when_allowed_shares_the_hosts_network(
    cove: CoveServer, connect: dict[str, str], host_services: HostServices
) -> None:
    """The first such sandbox starts cold and the pool of host-network sandboxes fills behind it: the next is a
    claim, on the host's network as well."""
    async with await AsyncSandbox.create(network="host", **connect) as first:
        with cove.http() as client:
            ready = client.get("/v1/pool", params={"wait": 30, "network": "host"}).json()["ready"]
        assert ready and first.id not in ready
        async with await AsyncSandbox.create(network="host", **connect) as sandbox:
            assert sandbox.id in ready, "a host-network create is a claim once its pool has filled"
            for each in (first, sandbox):
                assert each.info.network.mode == "host"
                [answer] = await reach(each, ("127.0.0.1", host_services.loopback_port, "tcp"))
                assert answer == "host-loopback"  # what docs/networking.md warns of


async def test_a_restart_keeps_a_live_sandboxs_network(tmp_path: Path, testnet: TestNet) -> None:
    """Sandboxes outlive their server: a restart puts their rules back, and their veth stays."""
    server = CoveServer(tmp_path / "home", extra_env={"COVE_DNS_UPSTREAM": f"{DNS}:53"})
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        created = await AsyncSandbox.create(network={"mode": "egress", "deny": [OTHER]}, **connection)
        await created.close()
        server.kill()
        server.start()
        async with await AsyncSandbox.connect(created.id, **connection) as sandbox:
            public, other = await reach(sandbox, (PUBLIC, PORT, "tcp"), (OTHER, PORT, "tcp"))
            assert public == PUBLIC and blocked(other)
    finally:
        server.kill_all_sandboxes()
        server.kill(signal.SIGTERM)
