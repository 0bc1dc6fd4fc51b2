"""Cove's DNS forwarder: the only resolver an ``egress`` sandbox has, and what makes host-name rules hold.

It listens on the sandboxes' gateway address (UDP and TCP, port 53) and serves only sandbox addresses it knows
(``Clients.client``). For each query it asks the upstream resolvers (the host's, by default) a query it builds
itself around the sandbox's question (checked label by label; never the sandbox's packet) and, when the
sandbox's ``allow`` rules name the host name, pins the IPv4 addresses answered into the sandbox's firewall set
*before* the answer goes back, so the connection that follows is let through (HTTPS included: the firewall sees
addresses, not names). Names a ``deny`` rule names get NXDOMAIN. Sandboxes have no IPv6, so AAAA, and HTTPS/SVCB
records (which carry address hints the firewall would not know), get an empty answer.

Everything a sandbox sends here is attacker input: queries are parsed strictly and bounded in size, each sandbox
has a rate (token bucket) and a cap on queries in flight and TCP connections, the whole forwarder a cap on
queries in flight, every wait a timeout; nothing blocks the event loop (parsing is linear in at most 512 bytes).
What it cannot stop is in docs/networking.md.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import secrets
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cove.runtime.netpolicy import NetworkPolicy

log = logging.getLogger("cove.dns")

QTYPE_A = 1
QTYPE_AAAA = 28
QTYPE_OPT = 41
QTYPE_SVCB = 64
QTYPE_HTTPS = 65
QTYPE_ANY = 255
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
FLAG_QR = 0x8000
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
EDNS_SIZE = 1232  # what the forwarder asks upstream for, and the most it sends a sandbox over UDP
MAX_TTL = 3600  # no answer is cached by a sandbox for longer than its addresses stay pinned (network.MAX_PIN)
IP_FREEBIND = 15
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")  # type, class, ttl, rdlength


class Clients(Protocol):
    """What the forwarder asks of the sandboxes' networks (``runtime.network.Networks``)."""

    def client(self, address: ipaddress.IPv4Address) -> tuple[str, NetworkPolicy] | None: ...

    async def pin(self, sandbox_id: str, name: str, addresses: Sequence[ipaddress.IPv4Address], ttl: int) -> int: ...


@dataclass(frozen=True)
class DnsLimits:
    max_query: int = 512  # bytes; a real query is a name of at most 255 and a few fixed fields
    rate: float = 50.0  # queries a second per sandbox, sustained…
    burst: int = 100  # …and at once
    in_flight: int = 256  # queries waiting on upstream, all sandboxes together
    in_flight_per_sandbox: int = 32
    tcp_per_sandbox: int = 4  # open TCP connections
    tcp_queries: int = 100  # queries one TCP connection may ask before it is closed
    idle: float = 10.0  # seconds a TCP connection may wait between queries
    upstream_timeout: float = 2.0


class DnsError(ValueError):
    """A packet that is not a query the forwarder serves."""


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    name: str  # lower case, dotted, no trailing dot
    qtype: int
    question: bytes  # the question section as the sandbox sent it
    edns: bool

    @property
    def udp_limit(self) -> int:
        return EDNS_SIZE if self.edns else 512


def parse_query(data: bytes, max_size: int = 512) -> Query:
    """A standard query with one question, at most one OPT record and nothing else; DnsError otherwise."""
    if len(data) > max_size:
        raise DnsError("too large")
    if len(data) < _HEADER.size:
        raise DnsError("too short")
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if flags & FLAG_QR or qdcount != 1 or ancount or nscount or arcount > 1:
        raise DnsError("not a standard query")
    labels: list[str] = []
    offset = _HEADER.size
    while True:
        if offset >= len(data):
            raise DnsError("truncated name")
        length = data[offset]
        offset += 1
        if length == 0:
            break
        if length > 63 or offset + length > len(data):
            raise DnsError("bad label")
        label = data[offset : offset + length].decode("ascii", errors="replace").lower()
        if not all(ch.isalnum() or ch in "-_" for ch in label):
            raise DnsError("label outside letters, digits, - and _")
        labels.append(label)
        offset += length
    if offset + 4 > len(data) or offset - _HEADER.size > 255:
        raise DnsError("bad question")
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    question = data[_HEADER.size : offset + 4]
    offset += 4
    edns = False
    if arcount:
        if data[offset : offset + 1] != b"\0" or offset + 11 > len(data):
            raise DnsError("bad additional record")
        rtype, _size, _ttl, rdlength = _RR.unpack_from(data, offset + 1)
        if rtype != QTYPE_OPT:
            raise DnsError("additional record other than OPT")
        offset += 11 + rdlength
        edns = True
    if offset != len(data):
        raise DnsError("trailing bytes")
    if qclass != CLASS_IN:
        raise DnsError("class other than IN")
    return Query(qid, flags, ".".join(labels), qtype, question, edns)


def reply(query: Query, rcode: int, *, truncated: bool = False) -> bytes:
    """An answer with no records: an error, NODATA, or (``truncated``) "ask again over TCP"."""
    flags = FLAG_QR | FLAG_RA | (query.flags & FLAG_RD) | rcode | (FLAG_TC if truncated else 0)
    return _HEADER.pack(query.id, flags, 1, 0, 0, 0) + query.question


def upstream_query(query: Query, qid: int) -> bytes:
    """The query the forwarder sends upstream: its own id and flags, the sandbox's question, its own OPT."""
    opt = b"\0" + _RR.pack(QTYPE_OPT, EDNS_SIZE, 0, 0) if query.edns else b""
    return _HEADER.pack(qid, FLAG_RD, 1, 0, 0, 1 if query.edns else 0) + query.question + opt


@dataclass(frozen=True)
class Answer:
    data: bytes  # with the sandbox's id and TTLs capped at MAX_TTL
    addresses: tuple[ipaddress.IPv4Address, ...]  # the A records of the answer section
    ttl: int  # the smallest TTL among them


def read_answer(data: bytes, qid: int, query: Query) -> Answer:
    """Check an upstream answer belongs to ``qid``/``query``; cap its TTLs; collect its IPv4 addresses."""
    if len(data) < _HEADER.size:
        raise DnsError("short answer")
    rid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    end = _HEADER.size + len(query.question)
    if rid != qid or not flags & FLAG_QR or qdcount != 1 or data[_HEADER.size : end].lower() != query.question.lower():
        raise DnsError("answer to another question")
    out = bytearray(data)
    struct.pack_into("!H", out, 0, query.id)
    offset, addresses, ttls = end, [], []
    for index in range(ancount + nscount + arcount):
        offset = _skip_name(data, offset)
        if offset + _RR.size > len(data):
            raise DnsError("truncated record")
        rtype, rclass, ttl, rdlength = _RR.unpack_from(data, offset)
        if rtype != QTYPE_OPT and ttl > MAX_TTL:
            struct.pack_into("!I", out, offset + 4, MAX_TTL)
        offset += _RR.size
        if offset + rdlength > len(data):
            raise DnsError("truncated record data")
        if index < ancount and rtype == QTYPE_A and rclass == CLASS_IN and rdlength == 4:
            addresses.append(ipaddress.IPv4Address(data[offset : offset + 4]))
            ttls.append(min(ttl, MAX_TTL))
        offset += rdlength
    return Answer(bytes(out), tuple(addresses), min(ttls, default=0))


def _skip_name(data: bytes, offset: int) -> int:
    for _ in range(128):
        if offset >= len(data):
            raise DnsError("truncated name")
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length & 0xC0:
            raise DnsError("bad label type")
        offset += 1 + length
    raise DnsError("name too long")


def host_resolvers(path: Path = Path("/etc/resolv.conf")) -> list[tuple[str, int]]:
    """The host's resolvers (``nameserver`` lines), the default upstreams."""
    upstreams = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    upstreams.append((str(ipaddress.ip_address(fields[1].split("%")[0])), 53))
    return upstreams


@dataclass
class _Bucket:
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


class DnsForwarder:
    """The forwarder for every egress sandbox; ``start`` binds ``listen``:``port`` (also before the address
    exists on the host: the first sandbox's veth brings it), ``close`` stops it."""

    def __init__(
        self,
        clients: Clients,
        listen: ipaddress.IPv4Address,
        upstreams: Sequence[tuple[str, int]],
        *,
        port: int = 53,
        limits: DnsLimits | None = None,
    ) -> None:
        self._clients = clients
        self._listen = listen
        self._port = port
        self.upstreams = list(upstreams)
        self.limits = limits or DnsLimits()
        self.stats: collections.Counter[str] = collections.Counter()
        self._buckets: dict[str, _Bucket] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._in_flight_total = 0
        self._tcp_open: collections.Counter[str] = collections.Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        udp = _bound(socket.SOCK_DGRAM, self._listen, self._port)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=udp)
        self._udp = transport
        tcp = _bound(socket.SOCK_STREAM, self._listen, self._port)
        tcp.listen(128)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp, limit=self.limits.max_query + 2)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()

    # -- admission --------------------------------------------------------------------------------------------

    def _admit(self, host: str) -> tuple[str, NetworkPolicy] | None:
        """The sandbox a packet from ``host`` comes from, if it may ask now; None drops the packet unanswered."""
        try:
            client = self._clients.client(ipaddress.IPv4Address(host))
        except ValueError:
            client = None
        if client is None:
            self.stats["stranger"] += 1
            return None
        sandbox_id = client[0]
        if not self._take_token(sandbox_id):
            self.stats["rate_limited"] += 1
            return None
        if (
            self._in_flight_total >= self.limits.in_flight
            or self._in_flight[sandbox_id] >= self.limits.in_flight_per_sandbox
        ):
            self.stats["too_many_in_flight"] += 1
            return None
        return client

    def _take_token(self, sandbox_id: str) -> bool:
        now = time.monotonic()
        bucket = self._buckets.get(sandbox_id)
        if bucket is None:
            if len(self._buckets) >= 4096:  # forget the idle ones: a full bucket is the same as none
                full = [key for key, b in self._buckets.items() if now - b.stamp > self.limits.burst / self.limits.rate]
                for key in full:
                    del self._buckets[key]
            bucket = self._buckets[sandbox_id] = _Bucket(float(self.limits.burst), now)
        bucket.tokens = min(float(self.limits.burst), bucket.tokens + (now - bucket.stamp) * self.limits.rate)
        bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    # -- UDP and TCP --------------------------------------------------------------------------------------------

    def _datagram(self, data: bytes, peer: tuple[str, int]) -> None:
        if len(data) > self.limits.max_query:
            self.stats["oversized"] += 1
            return
        client = self._admit(peer[0])
        if client is None:
            return
        task = asyncio.create_task(self._answer_datagram(data, peer, client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_datagram(self, data: bytes, peer: tuple[str, int], client: tuple[str, NetworkPolicy]) -> None:
        response = await self._respond(data, client, tcp=False)
        if response is not None and self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(response, peer)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        sandbox_id = None
        try:
            known = self._clients.client(ipaddress.IPv4Address(peer[0])) if peer else None
            if known is None or self._tcp_open[known[0]] >= self.limits.tcp_per_sandbox:
                self.stats["tcp_refused"] += 1
                return
            sandbox_id = known[0]
            self._tcp_open[sandbox_id] += 1
            for _ in range(self.limits.tcp_queries):
                head = await asyncio.wait_for(reader.readexactly(2), self.limits.idle)
                (length,) = struct.unpack("!H", head)
                if length > self.limits.max_query:
                    self.stats["oversized"] += 1
                    return
                data = await asyncio.wait_for(reader.readexactly(length), self.limits.idle)
                client = self._admit(peer[0])
                if client is None:
                    return
                response = await self._respond(data, client, tcp=True)
                if response is None:
                    return
                writer.write(struct.pack("!H", len(response)) + response)
                await asyncio.wait_for(writer.drain(), self.limits.idle)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            if sandbox_id is not None:
                self._tcp_open[sandbox_id] -= 1
                if not self._tcp_open[sandbox_id]:
                    del self._tcp_open[sandbox_id]
            writer.close()

    # -- answering ----------------------------------------------------------------------------------------------

    async def _respond(self, data: bytes, client: tuple[str, NetworkPolicy], *, tcp: bool) -> bytes | None:
        """The answer to send back, or None to stay silent (not even a query header)."""
        sandbox_id, policy = client
        try:
            query = parse_query(data, self.limits.max_query)
        except DnsError:
            self.stats["malformed"] += 1
            if len(data) >= _HEADER.size and not data[2] & 0x80:
                qid, flags = struct.unpack_from("!HH", data)
                return _HEADER.pack(qid, FLAG_QR | (flags & FLAG_RD) | FORMERR, 0, 0, 0, 0)
            return None
        if policy.denies_name(query.name):
            self.stats["denied"] += 1
            return reply(query, NXDOMAIN)
        if query.qtype in (QTYPE_AAAA, QTYPE_HTTPS, QTYPE_SVCB):
            return reply(query, NOERROR)
        if query.qtype == QTYPE_ANY:
            return reply(query, REFUSED)
        self._in_flight[sandbox_id] += 1
        self._in_flight_total += 1
        try:
            answer = await self._ask_upstream(query, tcp)
        finally:
            self._in_flight_total -= 1
            self._in_flight[sandbox_id] -= 1
            if not self._in_flight[sandbox_id]:
                del self._in_flight[sandbox_id]
        if answer is None:
            self.stats["upstream_failed"] += 1
            return reply(query, SERVFAIL)
        if answer.addresses and query.qtype == QTYPE_A:
            try:
                await self._clients.pin(sandbox_id, query.name, answer.addresses, answer.ttl)
            except Exception:
                log.exception("could not pin the addresses of %s for sandbox %s", query.name, sandbox_id)
                return reply(query, SERVFAIL)
        if not tcp and len(answer.data) > query.udp_limit:
            return reply(query, NOERROR, truncated=True)
        self.stats["answered"] += 1
        return answer.data

    async def _ask_upstream(self, query: Query, tcp: bool) -> Answer | None:
        qid = secrets.randbits(16)
        packet = upstream_query(query, qid)
        for upstream in self.upstreams:
            try:
                data = await asyncio.wait_for(
                    _exchange_tcp(upstream, packet) if tcp else _exchange_udp(upstream, packet, qid),
                    self.limits.upstream_timeout,
                )
                return read_answer(data, qid, query)
            except (TimeoutError, OSError, DnsError, asyncio.IncompleteReadError):
                continue
        return None


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, forwarder: DnsForwarder) -> None:
        self._forwarder = forwarder

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._forwarder._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an answer we sent (the sandbox closed its socket): nothing to do.
        pass


def _bound(kind: int, address: ipaddress.IPv4Address, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # The gateway address exists only while some sandbox's veth carries it.
    sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind((str(address), port))
    return sock


async def _exchange_udp(upstream: tuple[str, int], packet: bytes, qid: int) -> bytes:
    """One query over a socket of its own (a fresh random port), connected: only the upstream can answer it."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in upstream[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC) as sock:
        sock.connect(upstream)
        await loop.sock_sendall(sock, packet)
        while True:
            data = await loop.sock_recv(sock, 65535)
            if len(data) >= 2 and struct.unpack_from("!H", data)[0] == qid:
                return data


async def _exchange_tcp(upstream: tuple[str, int], packet: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(upstream[0], upstream[1])
    try:
        writer.write(struct.pack("!H", len(packet)) + packet)
        await writer.drain()
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(length)
    finally:
        writer.close()
