"""Cove's DNS forwarder: host-name rules pinned into the firewall, and a hostile sandbox's packets bounded.

The upstream is a DNS server on a test host (``dns_server.py``); probes run in a thread, since the forwarder
answers on the test's own event loop."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import Callable

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from cove.runtime.dns import DnsError, parse_query, read_answer, upstream_query
from cove.runtime.netpolicy import NetworkPolicy
from cove.testhosts import NetnsProcess, enter
from tests.network.conftest import OTHER, PORT, PRIVATE, PUBLIC, Egress, probe

# Sends raw packets from inside a sandbox (stdin: JSON [[hex, "udp"|"tcp"], ...]), waits for answers, prints their hex.
RAW = r"""
import json, socket, struct, sys, time
packets, wait = json.loads(sys.stdin.read()), float(sys.argv[2])
server = (sys.argv[1], 53)
answers = []
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for data, proto in packets:
    data = bytes.fromhex(data)
    if proto == "udp":
        udp.sendto(data, server)
    else:
        with socket.create_connection(server, timeout=3) as s:
            s.sendall(struct.pack("!H", len(data)) + data)
            try:
                (n,) = struct.unpack("!H", s.recv(2)); body = b""
                while len(body) < n: body += s.recv(n - len(body))
                answers.append(body.hex())
            except Exception:
                answers.append("")
udp.settimeout(wait)
try:
    while True: answers.append(udp.recv(65535).hex())
except OSError:
    pass
print(json.dumps(answers))
"""


def query(name: str, qtype: str = "A", edns: bool = False) -> bytes:
    record = DNSRecord.question(name, qtype)
    if edns:
        record.add_ar(__import__("dnslib").EDNS0(udp_len=1232))
    return bytes(record.pack())


async def raw(
    sandbox: NetnsProcess, egress: Egress, packets: list[tuple[bytes, str]], wait: float = 1.0
) -> list[DNSRecord | bytes]:
    encoded = json.dumps([[data.hex(), proto] for data, proto in packets])
    argv = [
        *enter(sandbox.pid),
        sys.executable,
        "-c",
        RAW,
        str(egress.networks.gateway),
        str(wait),
    ]
    process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate(encoded.encode())
    answers: list[DNSRecord | bytes] = []
    for item in json.loads(out):
        data = bytes.fromhex(item)
        try:
            answers.append(DNSRecord.parse(data))
        except Exception:
            answers.append(data)
    return answers


async def attach(egress: Egress, sandbox: NetnsProcess, policy: object) -> str:
    sandbox_id = f"sbx_{sandbox.pid}"
    await egress.networks.attach(sandbox_id, egress.next_uid(), sandbox.pid, NetworkPolicy.parse(policy))
    return sandbox_id


# -- the wire, without a network ---------------------------------------------------------------------------------


def test_a_query_is_parsed_strictly() -> None:
    parsed = parse_query(query("PyPI.org", "A", edns=True))
    assert (parsed.name, parsed.qtype, parsed.edns, parsed.udp_limit) == ("pypi.org", 1, True, 1232)
    record = DNSRecord.question("pypi.org")
    record.header.qr = 1
    bad = {
        "an answer": bytes(record.pack()),
        "two questions": query("a.test")[:4] + b"\0\2" + query("a.test")[6:] + query("b.test")[12:],
        "a compressed name": query("a.test")[:12] + b"\xc0\x0c\0\1\0\1",
        "a dot inside a label": query("a.test")[:12] + b"\x03a.b\0\0\1\0\1",
        "trailing bytes": query("a.test") + b"\0",
        "class CH": bytes(DNSRecord.question("version.bind", "TXT", "CH").pack()),
        "a header only": query("a.test")[:12],
        "too large": query("a.test") + b"\0" * 600,
    }
    for what, data in bad.items():
        with pytest.raises(DnsError):
            parse_query(data)
            pytest.fail(what)


def test_an_answer_is_matched_capped_and_read() -> None:
    asked = parse_query(query("allowed.test"))
    sent = DNSRecord.parse(upstream_query(asked, 4321))
    assert (sent.header.id, str(sent.q.qname), sent.ar) == (4321, "allowed.test.", [])
    upstream = sent.reply()
    upstream.add_answer(*__import__("dnslib").RR.fromZone("allowed.test. 86400 A 203.0.113.10"))
    answer = read_answer(bytes(upstream.pack()), 4321, asked)
    assert [str(a) for a in answer.addresses] == [PUBLIC]
    assert answer.ttl == 3600
    back = DNSRecord.parse(answer.data)
    assert back.header.id == asked.id and back.rr[0].ttl == 3600
    with pytest.raises(DnsError):
        read_answer(bytes(upstream.pack()), 1234, asked)  # another id: not ours


# -- the forwarder, from inside sandboxes ------------------------------------------------------------------------


async def test_a_name_rule_pins_what_the_forwarder_answered(
    egress: Egress, sandboxes: Callable[[], NetnsProcess]
) -> None:
    sandbox = sandboxes()
    sandbox_id = await attach(
        egress, sandbox, {"allow": ["allowed.test", "*.wild.test", "rebind.test"], "deny": ["denied.test"]}
    )
    # Before any lookup, the address is not reachable: allow narrowed egress to names, and none was answered yet.
    assert str((await probe(sandbox, [(PUBLIC, PORT, "tcp")]))[0]).startswith("error")
    names = await probe(
        sandbox,
        [
            ("allowed.test", PORT, "name"),
            ("a.b.wild.test", PORT, "name"),
            ("other.test", PORT, "name"),
            ("denied.test", PORT, "name"),
            ("rebind.test", PORT, "name"),
        ],
    )
    assert names[:3] == [[PUBLIC], [PUBLIC], [OTHER]]
    assert str(names[3]).startswith("error: gaierror")  # NXDOMAIN
    assert names[4] == [PRIVATE]
    public, other, private = await probe(sandbox, [(PUBLIC, PORT, "tcp"), (OTHER, PORT, "tcp"), (PRIVATE, PORT, "tcp")])
    assert public == PUBLIC
    assert str(other).startswith("error")  # resolved, but no allow rule names other.test
    assert str(private).startswith("error")  # a name never opens a private range (DNS rebinding)
    # Both names answered the same address, and each keeps it; rebind.test's private answer is pinned for no one.
    assert egress.networks.describe(sandbox_id).pinned == {"allowed.test": (PUBLIC,), "a.b.wild.test": (PUBLIC,)}
    # The rule goes: so do its pins, at once.
    await egress.networks.update(sandbox_id, NetworkPolicy.parse({"allow": ["other.test"]}))
    assert str((await probe(sandbox, [(PUBLIC, PORT, "tcp")]))[0]).startswith("error")
    assert egress.networks.describe(sandbox_id).pinned == {}


async def test_answers_aaaa_https_any_and_truncation(egress: Egress, sandboxes: Callable[[], NetnsProcess]) -> None:
    sandbox = sandboxes()
    await attach(egress, sandbox, "egress")
    aaaa, https, anything, big_udp = (
        await raw(sandbox, egress, [(query("allowed.test", "AAAA"), "udp")], wait=1.0)
        + await raw(sandbox, egress, [(query("allowed.test", "HTTPS"), "udp")])
        + await raw(sandbox, egress, [(query("allowed.test", "ANY"), "udp")])
        + await raw(sandbox, egress, [(query("big.test", "TXT", edns=True), "udp")])
    )
    assert isinstance(aaaa, DNSRecord) and aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr
    assert isinstance(https, DNSRecord) and not https.rr
    assert isinstance(anything, DNSRecord) and anything.header.rcode == RCODE.REFUSED
    assert isinstance(big_udp, DNSRecord) and big_udp.header.tc == 1 and not big_udp.rr
    (big_tcp,) = await raw(sandbox, egress, [(query("big.test", "TXT"), "tcp")], wait=0.1)
    assert isinstance(big_tcp, DNSRecord) and big_tcp.header.tc == 0 and QTYPE[big_tcp.rr[0].rtype] == "TXT"


async def test_garbage_oversized_and_floods_stay_bounded(egress: Egress, sandboxes: Callable[[], NetnsProcess]) -> None:
    sandbox = sandboxes()
    await attach(egress, sandbox, "egress")
    # Until the gateway's ARP answer comes, the kernel queues a sandbox's packets in a bounded queue and drops
    # the oldest: one query answered first makes the burst below reach the forwarder, not that queue.
    assert len(await raw(sandbox, egress, [(query("allowed.test"), "udp")])) == 1
    garbage = [(os.urandom(n % 300 + 1), "udp") for n in range(300)]
    oversized = [(query("allowed.test") + os.urandom(4000), "udp") for _ in range(50)]
    answers = await raw(sandbox, egress, oversized + garbage, wait=1.0)
    # Some may be lost before the forwarder reads them (a full socket buffer drops them: bounded too).
    assert 0 < egress.dns.stats["oversized"] <= 50
    assert egress.dns.stats["malformed"] > 0
    # Garbage gets FORMERR when it looks like a query header, silence otherwise; never an answer with records.
    assert all(isinstance(a, bytes) or not a.rr for a in answers)
    # A flood: 1,000 queries at once. The bucket lets a burst through, then drops; the loop keeps ticking.
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    flood = [(query(f"n{i}.wild.test"), "udp") for i in range(1000)]
    started = time.monotonic()
    answers = await raw(sandbox, egress, flood, wait=1.0)
    elapsed = time.monotonic() - started
    ticker.cancel()
    limits = egress.dns.limits
    assert len(answers) <= limits.burst + limits.rate * elapsed + 5
    assert egress.dns.stats["rate_limited"] > 0
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.25, "the event loop stalled"
    await asyncio.sleep(0.5)  # the bucket refills
    assert (await probe(sandbox, [("allowed.test", PORT, "name")]))[0] == [PUBLIC]


async def test_strangers_get_no_answer(egress: Egress) -> None:
    """The host itself (not a sandbox) asking the forwarder: silence."""
    loop = asyncio.get_running_loop()
    received = loop.create_future()

    class Listener(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            received.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Listener, local_addr=("127.0.0.1", 0))
    # The gateway address exists only with a sandbox attached: send to the forwarder through loopback instead.
    transport.sendto(query("allowed.test"), (str(egress.networks.gateway), 53))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(received, 0.5)
    transport.close()
