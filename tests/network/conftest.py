"""Fixtures for the network tests: test hosts (network namespaces on this machine), a DNS server on one of them,
services on the host, stand-in sandboxes, and a fresh ``Networks`` + DNS forwarder per test in a table, subnet and
interface prefix of its own. Everything is removed afterwards, on failure too.

The tests talk only to the loopback and to the test hosts made here. They need root (namespaces, veths,
nftables); test hosts have fixed addresses, so a ``TestNet`` holds a host-wide lock (see ``cove.testhosts``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cove.runtime.dns import DnsForwarder
from cove.runtime.network import NetworkError, Networks, resolv_conf
from cove.testhosts import NetnsProcess, TestNet, host_address

PUBLIC = "203.0.113.10"  # "the internet": the host the tests allow
OTHER = "198.51.100.20"  # "the internet": the host the tests deny
PRIVATE = "10.251.7.2"  # a machine on a private network
METADATA = "169.254.169.254"  # the cloud metadata service
DNS = "198.51.100.53"  # the upstream resolver (a test host of its own)
PORT = 8080
ZONE = {
    "allowed.test": [PUBLIC],
    "other.test": [OTHER],
    "*.wild.test": [PUBLIC],
    "denied.test": [OTHER],
    "rebind.test": [PRIVATE],
    "big.test": {"TXT": "x" * 3000},
}

if os.geteuid() != 0 or shutil.which("nft") is None:
    pytest.skip("the network tests need root and nftables (make system-deps)", allow_module_level=True)


@dataclass(frozen=True)
class HostServices:
    """TCP services on the host itself: one on its loopback (the Cove API's stand-in), one on every address."""

    loopback_port: int
    any_port: int
    address: ipaddress.IPv4Address | None  # one of the host's own non-loopback addresses


@pytest.fixture(scope="module")
def testnet() -> Iterator[TestNet]:
    with TestNet() as net:
        for address in (PUBLIC, OTHER, PRIVATE, METADATA):
            net.host(address).serve(PORT, 80)
        dns = net.host(DNS)
        process = dns.popen(
            [sys.executable, str(Path(__file__).with_name("dns_server.py")), json.dumps(ZONE)], stdout=subprocess.PIPE
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield net


def _serve(bind: str, answer: bytes) -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind((bind, 0))
    server.listen(16)

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(answer)

    threading.Thread(target=loop, daemon=True).start()
    return server, int(server.getsockname()[1])


@pytest.fixture(scope="module")
def host_services() -> Iterator[HostServices]:
    loopback, loopback_port = _serve("127.0.0.1", b"host-loopback")
    anywhere, any_port = _serve("0.0.0.0", b"host-service")
    yield HostServices(loopback_port, any_port, host_address())
    loopback.close()
    anywhere.close()


@dataclass
class Egress:
    networks: Networks
    dns: DnsForwarder
    uids: Iterator[int]

    def next_uid(self) -> int:
        return next(self.uids)


@pytest.fixture
async def egress(testnet: TestNet) -> AsyncIterator[Egress]:
    """A Networks of its own (table, /24, interface prefix) and its DNS forwarder, torn down afterwards."""
    tag = secrets.token_hex(2)
    networks = None
    for _ in range(10):
        candidate = Networks(
            subnet=f"10.252.{secrets.randbelow(256)}.0/24", table=f"cove_test_{tag}", prefix=f"ct{tag}"
        )
        try:
            await candidate.start()
        except NetworkError:  # the /24 is taken (another run's): draw again
            continue
        networks = candidate
        break
    assert networks is not None, "no free /24 in 10.252.0.0/16"
    dns = DnsForwarder(networks, networks.gateway, [(DNS, 53)])
    await dns.start()
    base = 100_000 + secrets.randbelow(800_000)
    try:
        yield Egress(networks, dns, iter(range(base, base + 200)))
    finally:
        await dns.close()
        await networks.teardown()
        await networks.close()


@pytest.fixture
def sandboxes(egress: Egress, tmp_path: Path) -> Iterator[Callable[[], NetnsProcess]]:
    """Stand-in sandboxes: processes in empty network namespaces, as warm-pool sandboxes are before a claim, with
    Cove's resolv.conf bound over /etc/resolv.conf."""
    made: list[NetnsProcess] = []
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(resolv_conf(egress.networks.gateway))

    def make() -> NetnsProcess:
        made.append(NetnsProcess(resolv))
        return made[-1]

    yield make
    for process in made:
        process.close()


async def probe(sandbox: NetnsProcess, targets: list[tuple[str, int, str]]) -> list[object]:
    """``NetnsProcess.probe``'s answers in order, run in a thread: the forwarder answers on the test's loop."""
    return list((await asyncio.to_thread(sandbox.probe, targets, 1.0)).values())
