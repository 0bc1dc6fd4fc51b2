"""What an egress sandbox reaches, rule kind by rule kind: the matrix of issue #12, on real namespaces, veths and
nftables (stand-in sandboxes: processes in empty network namespaces, as warm-pool sandboxes are before a claim)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable

from cove.runtime.netpolicy import NetworkPolicy
from cove.testhosts import HOST_SIDE, NetnsProcess
from tests.network.conftest import METADATA, OTHER, PORT, PRIVATE, PUBLIC, Egress, HostServices, probe

Target = tuple[str, int, str]


def reachable(result: object, answer: str) -> bool:
    return result == answer


def blocked(result: object) -> bool:
    return isinstance(result, str) and result.startswith("error")


async def attached(egress: Egress, sandbox: NetnsProcess, policy: object) -> None:
    await egress.networks.attach(f"sbx_{sandbox.pid}", egress.next_uid(), sandbox.pid, NetworkPolicy.parse(policy))


def never_reached(egress: Egress, services: HostServices, neighbour: str) -> dict[str, Target]:
    """What no allow rule in these tests names: the host (every way in), link-local, the other sandbox."""
    targets = {
        "host loopback (the Cove API)": ("127.0.0.1", services.loopback_port, "tcp"),
        "host service via the gateway": (str(egress.networks.gateway), services.any_port, "tcp"),
        "host service via a test-host side": (str(HOST_SIDE), services.any_port, "tcp"),
        "the forwarder's address, another port": (str(egress.networks.gateway), 5353, "udp"),
        "another sandbox": (neighbour, 9000, "tcp"),
    }
    if services.address is not None:
        targets["host service via its own address"] = (str(services.address), services.any_port, "tcp")
    return targets


async def test_egress_reaches_the_internet_and_nothing_of_the_host_or_private(
    egress: Egress, sandboxes: Callable[[], NetnsProcess], host_services: HostServices
) -> None:
    sandbox, neighbour = sandboxes(), sandboxes()
    await attached(egress, sandbox, "egress")
    await attached(egress, neighbour, "egress")
    neighbour.serve(9000)
    address = str(egress.networks.describe(f"sbx_{neighbour.pid}").address)
    never = never_reached(egress, host_services, address)
    targets = {
        "public tcp": (PUBLIC, PORT, "tcp"),
        "public udp": (PUBLIC, PORT, "udp"),
        "other public": (OTHER, PORT, "tcp"),
        "private host": (PRIVATE, PORT, "tcp"),
        "metadata": (METADATA, 80, "tcp"),
        **never,
    }
    results = dict(zip(targets, await probe(sandbox, list(targets.values())), strict=True))
    assert reachable(results["public tcp"], PUBLIC)
    assert reachable(results["public udp"], PUBLIC)
    assert reachable(results["other public"], OTHER)
    for name in ("private host", "metadata", *never):
        assert blocked(results[name]), (name, results[name])


async def test_deny_removes_a_destination(egress: Egress, sandboxes: Callable[[], NetnsProcess]) -> None:
    sandbox = sandboxes()
    await attached(egress, sandbox, {"deny": [OTHER]})
    public, *others = await probe(sandbox, [(PUBLIC, PORT, "tcp"), (OTHER, PORT, "tcp"), (OTHER, PORT, "udp")])
    assert public == PUBLIC
    assert all(blocked(result) for result in others)


async def test_allow_narrows_egress_to_what_it_names(egress: Egress, sandboxes: Callable[[], NetnsProcess]) -> None:
    sandbox = sandboxes()
    await attached(egress, sandbox, {"allow": [f"{PUBLIC}/32"]})
    public, other = await probe(sandbox, [(PUBLIC, PORT, "tcp"), (OTHER, PORT, "tcp")])
    assert public == PUBLIC
    assert blocked(other)


async def test_allow_inside_a_private_range_opens_exactly_that(
    egress: Egress, sandboxes: Callable[[], NetnsProcess], host_services: HostServices
) -> None:
    """0.0.0.0/0 keeps the internet open without opening private ranges; 10.251.7.0/24 opens that network only."""
    sandbox, neighbour = sandboxes(), sandboxes()
    await attached(egress, sandbox, {"allow": ["0.0.0.0/0", "10.251.7.0/24"]})
    await attached(egress, neighbour, "egress")
    neighbour.serve(9000)
    address = str(egress.networks.describe(f"sbx_{neighbour.pid}").address)
    never = never_reached(egress, host_services, address)
    targets = {"private": (PRIVATE, PORT, "tcp"), "public": (PUBLIC, PORT, "tcp"), "metadata": (METADATA, 80, "tcp")}
    results = dict(zip([*targets, *never], await probe(sandbox, [*targets.values(), *never.values()]), strict=True))
    assert results["private"] == PRIVATE
    assert results["public"] == PUBLIC
    for name in ("metadata", *never):
        assert blocked(results[name]), (name, results[name])


async def test_an_exact_allow_opens_the_metadata_address(egress: Egress, sandboxes: Callable[[], NetnsProcess]) -> None:
    sandbox = sandboxes()
    await attached(egress, sandbox, {"allow": [METADATA]})
    metadata, public = await probe(sandbox, [(METADATA, 80, "tcp"), (PUBLIC, PORT, "tcp")])
    assert metadata == METADATA
    assert blocked(public)


async def test_the_host_only_at_an_address_named_exactly(
    egress: Egress, sandboxes: Callable[[], NetnsProcess], host_services: HostServices
) -> None:
    sandbox = sandboxes()
    await attached(egress, sandbox, {"allow": ["0.0.0.0/0", f"{HOST_SIDE}/32"]})
    named, gateway, loopback = await probe(
        sandbox,
        [
            (str(HOST_SIDE), host_services.any_port, "tcp"),
            (str(egress.networks.gateway), host_services.any_port, "tcp"),
            ("127.0.0.1", host_services.loopback_port, "tcp"),
        ],
    )
    assert named == "host-service"
    assert blocked(gateway)
    assert blocked(loopback)


async def test_deny_wins_over_allow(egress: Egress, sandboxes: Callable[[], NetnsProcess]) -> None:
    sandbox = sandboxes()
    await attached(egress, sandbox, {"allow": ["203.0.113.0/24", "10.251.7.0/24"], "deny": [PUBLIC, PRIVATE]})
    assert all(blocked(r) for r in await probe(sandbox, [(PUBLIC, PORT, "tcp"), (PRIVATE, PORT, "tcp")]))


async def test_a_policy_change_applies_at_once_to_open_connections_too(
    egress: Egress, sandboxes: Callable[[], NetnsProcess]
) -> None:
    """Deny a destination while a connection to it is open: its next packet is dropped; allow it again and new
    connections pass."""
    sandbox = sandboxes()
    sandbox_id = f"sbx_{sandbox.pid}"
    await attached(egress, sandbox, "egress")
    # A client inside that keeps one UDP "connection" (a conntrack flow) and sends on it when told.
    client = sandbox.popen(
        [
            sys.executable,
            "-c",
            "import socket, sys\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.connect((sys.argv[1], 8080))\n"
            "for line in sys.stdin:\n"
            "    s.send(b'?')\n"
            "    try: print(s.recv(100).decode(), flush=True)\n"
            "    except OSError as e: print('error', flush=True)\n",
            PUBLIC,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert client.stdin is not None and client.stdout is not None

    def ask() -> str:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write("go\n")
        client.stdin.flush()
        return client.stdout.readline().strip()

    assert ask() == PUBLIC
    await egress.networks.update(sandbox_id, NetworkPolicy.parse({"deny": [PUBLIC]}))
    assert ask() == "error"
    assert blocked((await probe(sandbox, [(PUBLIC, PORT, "tcp")]))[0])
    info = await egress.networks.update(sandbox_id, NetworkPolicy.parse({"allow": [PUBLIC]}))
    assert [str(rule) for rule in info.policy.allow] == [PUBLIC]
    assert ask() == PUBLIC
    public, other = await probe(sandbox, [(PUBLIC, PORT, "tcp"), (OTHER, PORT, "tcp")])
    assert public == PUBLIC
    assert blocked(other)


async def test_detach_takes_the_network_away(egress: Egress, sandboxes: Callable[[], NetnsProcess]) -> None:
    sandbox = sandboxes()
    await attached(egress, sandbox, "egress")
    await egress.networks.detach(f"sbx_{sandbox.pid}")
    assert blocked((await probe(sandbox, [(PUBLIC, PORT, "tcp")]))[0])
    links = (await asyncio.to_thread(subprocess.run, ["ip", "-o", "link"], capture_output=True, text=True)).stdout
    assert egress.networks.addressing.prefix not in links
