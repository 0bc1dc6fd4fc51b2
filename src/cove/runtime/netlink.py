"""Just enough rtnetlink to wire a sandbox: a veth pair, addresses, routes — from Python, with no process spawned.

``ip`` costs a fork and an exec per command (about 1–2 ms each here); the same requests over a netlink socket cost
tens of microseconds, which is what lets a warm-pool claim attach a network within its time budget.

A netlink socket belongs to the network namespace of the thread that creates it, so ``socket_in`` enters the
sandbox's namespace in a short-lived thread of its own, opens the socket there and lets the thread end: no thread
the server keeps ever sits in a sandbox's namespace.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
IFLA_IFNAME = 3
IFLA_LINKINFO = 18
IFLA_AF_SPEC = 26
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFLA_INET6_ADDR_GEN_MODE = 8
IN6_ADDR_GEN_MODE_NONE = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PREFSRC = 7
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RTN_UNICAST = 1
RTNH_F_ONLINK = 4
IFF_UP = 0x1
NLA_F_NESTED = 0x8000
CLONE_NEWNET = 0x40000000

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst/src len, tos, table, protocol, scope, type, flags
_ATTR = struct.Struct("=HH")


class NetlinkError(OSError):
    """The kernel refused a request; ``errno`` says why (EEXIST: the name or route is taken)."""


def _align(length: int) -> int:
    return (length + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    data = _ATTR.pack(_ATTR.size + len(payload), kind) + payload
    return data + b"\0" * (_align(len(data)) - len(data))


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def _name(value: str) -> bytes:
    return value.encode() + b"\0"


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            return
        yield kind & ~NLA_F_NESTED, data[offset + _ATTR.size : offset + length]
        offset += _align(length)


@dataclass(frozen=True)
class Link:
    index: int
    name: str


class Netlink:
    """One rtnetlink socket, in the namespace it was opened in. Requests are synchronous: send, read the ack."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._seq = 0

    @classmethod
    def here(cls) -> Netlink:
        return cls(_open())

    @classmethod
    def inside(cls, netns_fd: int) -> Netlink:
        return cls(socket_in(netns_fd))

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one request and return the messages the kernel answered before its ack (type, payload)."""
        return self._exchange(kind, body, NLM_F_ACK | flags)

    def _exchange(self, kind: int, body: bytes, flags: int) -> list[tuple[int, bytes]]:
        """Send a request and collect its answers until the ack (an error message with code 0) or a dump's end."""
        self._seq += 1
        seq = self._seq
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body)
        replies: list[tuple[int, bytes]] = []
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, rtype, _flags, rseq, _pid = _HEADER.unpack_from(data, offset)
                payload = data[offset + _HEADER.size : offset + length]
                offset += _align(length)
                if rseq != seq:
                    continue
                if rtype == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise NetlinkError(-code, f"netlink request {kind}: {os.strerror(-code)}")
                    return replies
                if rtype == NLMSG_DONE:
                    return replies
                replies.append((rtype, payload))

    # -- links ------------------------------------------------------------------------------------------------

    def add_veth(self, name: str, peer: str, peer_netns_fd: int) -> None:
        """A veth pair, both ends down: ``name`` here, ``peer`` in the namespace of ``peer_netns_fd``. EEXIST when
        ``name`` is taken. Down, because the kernel refuses an address-generation mode at creation, and a link
        that comes up without one gets an IPv6 link-local address at once (see ``up_without_ipv6``)."""
        peer_info = _IFINFO.pack(0, 0, 0, 0, 0)
        peer_info += attr(IFLA_IFNAME, _name(peer)) + attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
        info = nested(
            IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth"), nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))
        )
        self.request(
            RTM_NEWLINK, _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, _name(name)) + info, NLM_F_CREATE | NLM_F_EXCL
        )

    def up_without_ipv6(self, index: int) -> None:
        """Bring a link up with no IPv6 address of its own: sandboxes speak IPv4 only (docs/networking.md)."""
        no_ipv6 = nested(IFLA_AF_SPEC, nested(socket.AF_INET6, attr(IFLA_INET6_ADDR_GEN_MODE, b"\x01")))
        self.request(RTM_NEWLINK, _IFINFO.pack(0, 0, index, 0, 0) + no_ipv6)
        self.request(RTM_NEWLINK, _IFINFO.pack(0, 0, index, IFF_UP, IFF_UP))

    def down(self, index: int) -> None:
        """Take a link down (a veth's peer loses its carrier: nothing passes either way), at once: unlike a
        delete, it waits out no RCU grace period."""
        self.request(RTM_NEWLINK, _IFINFO.pack(0, 0, index, 0, IFF_UP))

    def delete_link(self, name: str) -> bool:
        """Delete a link (a veth takes its peer with it); False when there was none."""
        try:
            self.request(RTM_DELLINK, _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, _name(name)))
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return False
            raise
        return True

    def link(self, name: str) -> Link | None:
        try:
            replies = self.request(RTM_GETLINK, _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, _name(name)))
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        for rtype, payload in replies:
            if rtype == RTM_NEWLINK:
                _family, _type, index, _flags, _change = _IFINFO.unpack_from(payload)
                return Link(index, name)
        return None

    def links(self) -> list[Link]:
        """Every link of this namespace (a dump)."""
        found: list[Link] = []
        for _rtype, payload in self._exchange(RTM_GETLINK, _IFINFO.pack(0, 0, 0, 0, 0), NLM_F_DUMP):
            _family, _type, index, _flags, _change = _IFINFO.unpack_from(payload)
            for kind, value in _attrs(payload[_IFINFO.size :]):
                if kind == IFLA_IFNAME:
                    found.append(Link(index, value.rstrip(b"\0").decode()))
        return found

    # -- addresses and routes ---------------------------------------------------------------------------------

    def add_address(self, index: int, address: ipaddress.IPv4Address) -> None:
        """``address``/32 on the link: a point-to-point end, with no subnet route of its own."""
        body = _IFADDR.pack(socket.AF_INET, 32, 0, RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, address.packed) + attr(IFA_ADDRESS, address.packed)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_host_route(self, index: int, destination: ipaddress.IPv4Address, source: ipaddress.IPv4Address) -> None:
        """``destination``/32 through the link. EEXIST when another link already routes that address."""
        body = _RTMSG.pack(socket.AF_INET, 32, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_LINK, RTN_UNICAST, 0)
        body += attr(RTA_DST, destination.packed) + attr(RTA_OIF, struct.pack("=I", index))
        body += attr(RTA_PREFSRC, source.packed)
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, index: int, gateway: ipaddress.IPv4Address) -> None:
        """The default route through ``gateway``, which is on the link though no subnet says so (onlink)."""
        body = _RTMSG.pack(
            socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, RTNH_F_ONLINK
        )
        body += attr(RTA_GATEWAY, gateway.packed) + attr(RTA_OIF, struct.pack("=I", index))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)


def _open() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    sock.bind((0, 0))
    return sock


def socket_in(netns_fd: int) -> socket.socket:
    """An rtnetlink socket in the namespace ``netns_fd``, opened by a thread that enters it and then ends."""
    result: list[socket.socket | BaseException] = []

    def enter_and_open() -> None:
        try:
            _setns(netns_fd)
            result.append(_open())
        except BaseException as exc:  # handed to the caller's thread
            result.append(exc)

    worker = threading.Thread(target=enter_and_open, name="cove-netns", daemon=True)
    worker.start()
    worker.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _setns(fd: int) -> None:
    """setns(2) for the calling thread (``os.setns`` arrives only in Python 3.12)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")
