"""The ``egress`` network mode: a veth pair per sandbox, NATed through the host, filtered by nftables.

Each sandbox's veth pair joins its network namespace (reached through its PID 1's ``/proc/<pid>/ns/net``) to the
host: ``eth0`` inside with one address derived from the sandbox's uid, ``<prefix><uid>`` on the host. Every host
end carries the same gateway address, which is also where Cove's DNS forwarder listens (``runtime.dns``), so every
sandbox has the same ``/etc/resolv.conf``. One nftables table (``inet cove``) holds the host-wide rules and, per
sandbox, a chain whose rules carry its policy's addresses and one set of the addresses pinned for allowed host
names; a policy change rewrites the chain in one transaction.

Why veth and nftables rather than pasta: attach costs about 1.5 ms from Python (netlink and libnftables, no
process spawned) against about 25 ms for pasta, and a veth carries bulk transfers at the host's own rate while
pasta copies every byte through a user-space process; measured in benchmarks/bench_network.py, RESULTS.md.

The kernel holds all of this, so it outlives a server restart with the sandboxes; ``start`` reconciles it with the
sandboxes still alive (addresses are derived from uids, so nothing else needs remembering).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import secrets
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cove.runtime.netlink import Netlink, NetlinkError
from cove.runtime.netpolicy import BLOCKED, CompiledPolicy, NetworkPolicy
from cove.runtime.nft import Nft

log = logging.getLogger("cove.network")

DEFAULT_SUBNET = "10.203.0.0/16"
DEFAULT_TABLE = "cove"
DEFAULT_PREFIX = "cv"
SANDBOX_INTERFACE = "eth0"
# How long an address answered for a host-name rule stays reachable: at least MIN_PIN (clients cache answers),
# at most MAX_PIN (the forwarder caps the TTLs it hands out to this, so no client caches an answer longer).
MIN_PIN = 300
MAX_PIN = 3600
MAX_PINS = 4096
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


class NetworkError(Exception):
    """The network of a sandbox could not be set up or changed."""


class AddressInUse(NetworkError):
    """The address this sandbox's uid derives to belongs to another live sandbox (uids far apart, same slot)."""


class NotAttached(NetworkError):
    pass


@dataclass(frozen=True)
class LiveSandbox:
    """What ``start`` needs to know of a sandbox that survived a restart."""

    sandbox_id: str
    uid: int
    init_pid: int
    policy: NetworkPolicy


@dataclass(frozen=True)
class NetworkInfo:
    """What ``describe`` reports: the policy in force and where the sandbox sits."""

    sandbox_id: str
    policy: NetworkPolicy
    interface: str
    address: ipaddress.IPv4Address
    gateway: ipaddress.IPv4Address
    pinned: dict[str, tuple[str, ...]]  # host name -> the addresses reachable for it now


@dataclass
class _Attachment:
    sandbox_id: str
    uid: int
    interface: str
    address: ipaddress.IPv4Address
    policy: NetworkPolicy
    # The conntrack mark of the connections checked against the policy in force: a change of policy takes a new
    # one, so every open connection is checked again at its next packet (walking conntrack to drop them instead
    # took 10–40 ms per change here, for the table's 262,144 buckets).
    generation: int = field(default_factory=lambda: secrets.randbits(31) + 1)
    # address -> {a host name it was answered for: when that answer's pin expires}. Names that share an address
    # (a CDN's) each keep it; a policy change keeps an address while some name of it is still allowed.
    pins: dict[ipaddress.IPv4Address, dict[str, float]] = field(default_factory=dict)

    def keep_pins(self, policy: NetworkPolicy, now: float) -> None:
        """Forget the pins of names ``policy`` no longer allows, and the ones that expired."""
        kept = {
            address: {name: expires for name, expires in names.items() if expires > now and policy.allows_name(name)}
            for address, names in self.pins.items()
        }
        self.pins = {address: names for address, names in kept.items() if names}


@dataclass(frozen=True)
class Addressing:
    """Where a uid's sandbox sits: one address of ``subnet`` (its first is the gateway), one host interface."""

    subnet: ipaddress.IPv4Network
    prefix: str

    def __post_init__(self) -> None:
        if not 12 <= self.subnet.prefixlen <= 24:
            raise NetworkError(f"the sandbox subnet must be a /12 to /24, not {self.subnet}")
        if not self.prefix.isalnum() or len(self.prefix) > 6:
            raise NetworkError(
                f"interface prefix {self.prefix!r}: up to six letters or digits (an interface name is at most 15)"
            )

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.subnet.network_address + 1

    def slot(self, uid: int) -> int:
        """2 … size-2: the network address, the gateway and the broadcast address are no sandbox's."""
        return 2 + uid % (self.subnet.num_addresses - 3)

    def address(self, uid: int) -> ipaddress.IPv4Address:
        return self.subnet.network_address + self.slot(uid)

    def interface(self, uid: int) -> str:
        return f"{self.prefix}{uid}"

    def uid_of(self, interface: str) -> int | None:
        rest = interface.removeprefix(self.prefix)
        return int(rest) if rest != interface and rest.isdigit() else None


def resolv_conf(gateway: ipaddress.IPv4Address) -> str:
    """The /etc/resolv.conf of every sandbox that may get a network: Cove's forwarder, nothing else. Bound over
    the host's in pooled sandboxes too, before their mode is known; with no network a lookup fails at once."""
    return f"# Cove's DNS forwarder (docs/networking.md)\nnameserver {gateway}\noptions timeout:2 attempts:2\n"


class Networks:
    """The host-wide side of ``egress``: the nftables table, forwarding, and every sandbox's veth and rules.

    Methods are coroutines that run their few system calls in a thread; the kernel state they change is shared,
    so they take one lock (attach, update and detach are about a millisecond each).
    """

    def __init__(self, subnet: str = DEFAULT_SUBNET, table: str = DEFAULT_TABLE, prefix: str = DEFAULT_PREFIX) -> None:
        self.addressing = Addressing(ipaddress.IPv4Network(subnet), prefix)
        if not table.replace("_", "").isalnum():
            raise NetworkError(f"table name {table!r}: letters, digits and underscores only")
        self.table = table
        self._never = (*BLOCKED, self.addressing.subnet)
        self._nft: Nft | None = None
        self._host: Netlink | None = None
        self._attached: dict[str, _Attachment] = {}
        self._deleting: set[asyncio.Task[None]] = set()  # veths of cut sandboxes, deleted in the background
        self._by_address: dict[ipaddress.IPv4Address, _Attachment] = {}
        self._lock = asyncio.Lock()

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.addressing.gateway

    # -- host-wide ----------------------------------------------------------------------------------------------

    async def start(self, live: Iterable[LiveSandbox] = ()) -> None:
        """Set the host up (idempotent) and reconcile it with the sandboxes that are alive: their veths and rules
        are kept (or put back), everything else of Cove's in the kernel is removed."""
        async with self._lock:
            await asyncio.to_thread(self._start, list(live))

    def _start(self, live: list[LiveSandbox]) -> None:
        self._nft = self._nft or Nft()
        self._host = self._host or Netlink.here()
        self._check_subnet_free()
        exists = self._table_exists()
        guard = self._has_guard() if exists else IP_FORWARD.read_text().strip() == "0"
        self._nft.run(self._base_ruleset(guard))
        IP_FORWARD.write_text("1")
        wanted = {sandbox.uid: sandbox for sandbox in live if sandbox.policy.mode == "egress"}
        for link in self._host.links():
            uid = self.addressing.uid_of(link.name)
            if uid is not None and uid not in wanted:
                self._host.delete_link(link.name)
        for chain in self._sandbox_chains():
            uid = self.addressing.uid_of(chain)
            if uid is not None and uid not in wanted:
                self._nft.run(self._detach_batch(chain))
        for sandbox in wanted.values():
            try:
                self._adopt(sandbox)
            except (NetworkError, OSError) as exc:
                log.warning("sandbox %s: could not restore its network: %s", sandbox.sandbox_id, exc)

    def _adopt(self, sandbox: LiveSandbox) -> None:
        """A sandbox that lived through a restart: its rules are put back as its policy says; its veth is kept,
        or made again if it went missing."""
        assert self._host is not None
        name = self.addressing.interface(sandbox.uid)
        if self._host.link(name) is None:
            self._attach(sandbox.sandbox_id, sandbox.uid, sandbox.init_pid, sandbox.policy)
            return
        attachment = self._attachment(sandbox.sandbox_id, sandbox.uid, sandbox.policy)
        assert self._nft is not None
        # The pins in the kernel are kept: this process no longer knows their names, but they expire by themselves.
        self._nft.run(self._sandbox_batch(attachment, keep_pins=True))
        self._remember(attachment)

    def attached(self) -> list[str]:
        """The sandboxes that have their network here."""
        return list(self._attached)

    async def close(self) -> None:
        """Let go of the kernel handles; the sandboxes' networks stay (they outlive the server)."""
        if self._deleting:
            await asyncio.gather(*self._deleting)
        async with self._lock:
            if self._host is not None:
                self._host.close()
                self._host = None
            if self._nft is not None:
                self._nft.close()
                self._nft = None

    async def teardown(self) -> None:
        """Remove every veth and the whole table (uninstall, tests). Forwarding is left on."""
        async with self._lock:
            await asyncio.to_thread(self._teardown)

    def _teardown(self) -> None:
        nft = self._nft or Nft()
        host = self._host or Netlink.here()
        try:
            for link in host.links():
                if self.addressing.uid_of(link.name) is not None:
                    host.delete_link(link.name)
            if self._table_exists(nft):
                nft.run(f"delete table inet {self.table}")
        finally:
            # Handles made for this call only (a context caches the host's whole ruleset: tens of MB on a host
            # with many tables).
            if nft is not self._nft:
                nft.close()
            if host is not self._host:
                host.close()
        self._attached.clear()
        self._by_address.clear()

    # -- per sandbox --------------------------------------------------------------------------------------------

    async def attach(self, sandbox_id: str, uid: int, init_pid: int, policy: NetworkPolicy) -> NetworkInfo:
        """Give the running sandbox whose PID 1 is ``init_pid`` (started with its own, empty network namespace)
        the ``egress`` network under ``policy``. Rules first, then the veth: no packet ever passes unfiltered."""
        if policy.mode != "egress":
            raise NetworkError(f"only mode 'egress' attaches a network, not {policy.mode!r}")
        async with self._lock:
            await asyncio.to_thread(self._attach, sandbox_id, uid, init_pid, policy)
        return self.describe(sandbox_id)

    def _attach(self, sandbox_id: str, uid: int, init_pid: int, policy: NetworkPolicy) -> None:
        assert self._nft is not None and self._host is not None, "Networks.start first"
        if sandbox_id in self._attached:
            raise NetworkError(f"sandbox {sandbox_id} already has a network")
        attachment = self._attachment(sandbox_id, uid, policy)
        name = attachment.interface
        try:
            netns = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetworkError(f"sandbox {sandbox_id}: no network namespace at pid {init_pid} ({exc})") from exc
        self._nft.run(self._sandbox_batch(attachment, keep_pins=False))
        try:
            self._wire(attachment, netns)
        except BaseException:
            with contextlib.suppress(NetlinkError):
                self._host.delete_link(name)
            self._nft.run(self._detach_batch(name))
            raise
        finally:
            os.close(netns)
        self._remember(attachment)

    def _wire(self, attachment: _Attachment, netns: int) -> None:
        assert self._host is not None
        host, gateway = self._host, self.gateway
        try:
            host.add_veth(attachment.interface, SANDBOX_INTERFACE, netns)
        except NetlinkError as exc:
            if exc.errno == errno.EEXIST:
                raise NetworkError(f"interface {attachment.interface} exists: the sandbox is attached") from exc
            raise
        link = host.link(attachment.interface)
        if link is None:
            raise NetworkError(f"interface {attachment.interface} vanished while it was set up")
        host.add_address(link.index, gateway)
        host.up_without_ipv6(link.index)
        try:
            host.add_host_route(link.index, attachment.address, gateway)
        except NetlinkError as exc:
            if exc.errno == errno.EEXIST:
                raise AddressInUse(f"{attachment.address} (uid {attachment.uid}) is another sandbox's") from exc
            raise
        with Netlink.inside(netns) as inside:
            peer = inside.link(SANDBOX_INTERFACE)
            if peer is None:
                raise NetworkError(f"{SANDBOX_INTERFACE} did not arrive in the sandbox")
            inside.add_address(peer.index, attachment.address)
            inside.up_without_ipv6(peer.index)
            inside.add_default_route(peer.index, gateway)

    async def update(self, sandbox_id: str, policy: NetworkPolicy) -> NetworkInfo:
        """Put ``policy`` in force for a running sandbox, in one transaction: its sets, and its chain with a new
        generation, so that open connections too are checked against the new policy at their next packet."""
        if policy.mode != "egress":
            raise NetworkError("a running sandbox's network mode cannot change; only its allow and deny rules")
        async with self._lock:
            attachment = self._get(sandbox_id)
            previous = attachment.policy, attachment.generation
            attachment.policy, attachment.generation = policy, (attachment.generation % 0x7FFFFFFF) + 1
            attachment.keep_pins(policy, time.time())
            try:
                await asyncio.to_thread(self._apply, attachment)
            except BaseException:
                attachment.policy, attachment.generation = previous
                raise
        return self.describe(sandbox_id)

    def _apply(self, attachment: _Attachment) -> None:
        assert self._nft is not None
        self._nft.run(self._sandbox_batch(attachment, keep_pins=False))

    async def detach(self, sandbox_id: str) -> None:
        """Remove the sandbox's veth, rules and connections; a sandbox that is gone already is fine."""
        async with self._lock:
            attachment = self._attached.pop(sandbox_id, None)
            if attachment is None:
                return
            self._by_address.pop(attachment.address, None)
            await asyncio.to_thread(self._detach, attachment)

    async def cut(self, sandbox_id: str) -> None:
        """``detach`` for a sandbox that lives on (a pooled one claimed for ``none``): its veth is taken down and
        its rules removed at once, and the veth deleted in the background (a delete waits out an RCU grace
        period, ~20 ms, which the claim need not)."""
        async with self._lock:
            attachment = self._attached.pop(sandbox_id, None)
            if attachment is None:
                return
            self._by_address.pop(attachment.address, None)
            await asyncio.to_thread(self._cut, attachment.interface)
        task = asyncio.create_task(self._delete_link(attachment.interface))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)

    def _cut(self, name: str) -> None:
        assert self._nft is not None and self._host is not None
        link = self._host.link(name)
        if link is not None:
            self._host.down(link.index)
        self._nft.run(self._detach_batch(name))

    async def _delete_link(self, name: str) -> None:
        async with self._lock:
            if self._host is not None:
                try:
                    await asyncio.to_thread(self._host.delete_link, name)
                except NetlinkError as exc:
                    log.warning("could not delete the veth %s of a sandbox now without network: %s", name, exc)

    def _detach(self, attachment: _Attachment) -> None:
        assert self._nft is not None and self._host is not None
        # The veth usually went with the sandbox's namespace; deleting one still there waits out an RCU grace
        # period (about 20 ms here), which is why detach is off every hot path.
        self._host.delete_link(attachment.interface)
        self._nft.run(self._detach_batch(attachment.interface))

    def describe(self, sandbox_id: str) -> NetworkInfo:
        attachment = self._get(sandbox_id)
        now = time.time()
        pinned: dict[str, list[str]] = {}
        for address, names in sorted(attachment.pins.items()):
            for name, expires in names.items():
                if expires > now:
                    pinned.setdefault(name, []).append(str(address))
        return NetworkInfo(
            sandbox_id=sandbox_id,
            policy=attachment.policy,
            interface=attachment.interface,
            address=attachment.address,
            gateway=self.gateway,
            pinned={name: tuple(addresses) for name, addresses in pinned.items()},
        )

    # -- what the DNS forwarder asks ----------------------------------------------------------------------------

    def client(self, address: ipaddress.IPv4Address) -> tuple[str, NetworkPolicy] | None:
        """The sandbox (id, policy in force) whose address ``address`` is; None for anyone else."""
        attachment = self._by_address.get(address)
        return (attachment.sandbox_id, attachment.policy) if attachment is not None else None

    async def pin(self, sandbox_id: str, name: str, addresses: Sequence[ipaddress.IPv4Address], ttl: int) -> int:
        """Make ``addresses`` (answered for ``name``) reachable by the sandbox for ``pin_seconds(ttl)``, if its
        policy's allow rules name ``name``; returns the seconds pinned (0: nothing was). Past MAX_PINS live
        pins, new ones are refused: the sandbox may resolve endlessly, its set stays bounded."""
        attachment = self._attached.get(sandbox_id)
        if attachment is None or not addresses or not attachment.policy.allows_name(name):
            return 0
        seconds = pin_seconds(ttl)
        now = time.time()
        if len(attachment.pins) >= MAX_PINS:
            attachment.keep_pins(attachment.policy, now)
        # An address in a never-reached range is never let through for a name (DNS rebinding): no pin for it.
        fresh = [
            address
            for address in addresses
            if not any(address in net for net in self._never)
            and (address in attachment.pins or len(attachment.pins) < MAX_PINS)
        ]
        if not fresh:
            return 0
        for address in fresh:
            attachment.pins.setdefault(address, {})[name] = now + seconds
        elements = ", ".join(f"{address} timeout {seconds}s" for address in fresh)
        assert self._nft is not None
        command = f"add element inet {self.table} {attachment.interface}_pins {{ {elements} }}"
        await asyncio.to_thread(self._nft.run, command)
        return seconds

    # -- the rules ----------------------------------------------------------------------------------------------

    def _attachment(self, sandbox_id: str, uid: int, policy: NetworkPolicy) -> _Attachment:
        return _Attachment(
            sandbox_id=sandbox_id,
            uid=uid,
            interface=self.addressing.interface(uid),
            address=self.addressing.address(uid),
            policy=policy,
        )

    def _remember(self, attachment: _Attachment) -> None:
        self._attached[attachment.sandbox_id] = attachment
        self._by_address[attachment.address] = attachment

    def _get(self, sandbox_id: str) -> _Attachment:
        attachment = self._attached.get(sandbox_id)
        if attachment is None:
            raise NotAttached(f"sandbox {sandbox_id} has no egress network")
        return attachment

    def _base_ruleset(self, guard: bool) -> str:
        """The host-wide table, re-made in one transaction at every start: the base chains are flushed and filled
        again, the per-sandbox chains and sets (and the map that leads to them) are kept."""
        t, p, gateway = self.table, self.addressing.prefix, self.gateway
        blocked = ", ".join(str(net) for net in ipaddress.collapse_addresses([*BLOCKED, self.addressing.subnet]))
        lines = [
            f"add table inet {t}",
            f"add set inet {t} blocked {{ type ipv4_addr; flags interval; }}",
            f"flush set inet {t} blocked",
            f"add element inet {t} blocked {{ {blocked} }}",
            f"add map inet {t} sandboxes {{ type ifname : verdict; }}",
            f"add chain inet {t} forward {{ type filter hook forward priority filter; policy accept; }}",
            f"add chain inet {t} input {{ type filter hook input priority filter; policy accept; }}",
            f"add chain inet {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}",
            *(f"flush chain inet {t} {chain}" for chain in ("forward", "input", "postrouting")),
            # From a sandbox: its own chain decides (the map holds one jump per attached sandbox).
            f"add rule inet {t} forward iifname vmap @sandboxes",
            f'add rule inet {t} forward iifname "{p}*" drop',
            # To a sandbox: answers to what it opened, nothing else (published ports go through its supervisor).
            f'add rule inet {t} forward oifname "{p}*" ct state established,related accept',
            f'add rule inet {t} forward oifname "{p}*" drop',
            f"add rule inet {t} input iifname vmap @sandboxes",
            f'add rule inet {t} input iifname "{p}*" drop',
            # The gateway address is the host's: the DNS forwarder there serves sandboxes only.
            f'add rule inet {t} input ip daddr {gateway} iifname != "lo" drop',
            f'add rule inet {t} postrouting iifname "{p}*" oifname != "{p}*" masquerade',
        ]
        if guard:
            # Forwarding was off before Cove: the host routes for its sandboxes and for nothing else.
            lines += [
                f"add chain inet {t} guard {{ type filter hook forward priority filter + 1; policy accept; }}",
                f"flush chain inet {t} guard",
                f'add rule inet {t} guard iifname != "{p}*" oifname != "{p}*" drop',
            ]
        return "\n".join(lines) + "\n"

    def _declarations(self, name: str) -> list[str]:
        """A sandbox's chain and sets; ``add`` of what exists is a no-op, so every batch may begin with these."""
        t = self.table
        return [
            f"add set inet {t} {name}_pins {{ type ipv4_addr; flags timeout; size {MAX_PINS}; }}",
            f"add chain inet {t} {name}",
        ]

    def _sandbox_batch(self, attachment: _Attachment, *, keep_pins: bool) -> str:
        """One sandbox's chain and sets as its policy says, in one transaction: made if missing, else refilled."""
        t, n = self.table, attachment.interface
        lines = self._declarations(n)
        lines += [f"flush chain inet {t} {n}", *(f"add rule inet {t} {n} {r}" for r in self._sandbox_rules(attachment))]
        lines.append(f'add element inet {t} sandboxes {{ "{n}" : jump {n} }}')
        if not keep_pins:
            lines.append(f"flush set inet {t} {n}_pins")
        now = time.time()
        expiries = {address: max(names.values()) - now for address, names in attachment.pins.items()}
        pins = [f"{address} timeout {int(left)}s" for address, left in expiries.items() if left >= 1]
        if pins:
            lines.append(f"add element inet {t} {n}_pins {{ {', '.join(pins)} }}")
        return "\n".join(lines) + "\n"

    def _sandbox_rules(self, attachment: _Attachment) -> list[str]:
        """In order: IPv4 from its own address only; connections checked under this generation pass; DNS to the
        forwarder; never another sandbox; deny; the host only at addresses named; opened never-reached ranges;
        never-reached ranges; allowed and pinned destinations; nothing else."""
        n, gateway = attachment.interface, self.gateway
        compiled: CompiledPolicy = attachment.policy.compile()
        mark = f"ct mark set 0x{attachment.generation:08x} accept"
        rules = [
            "meta nfproto ipv6 drop",
            f"ip saddr != {attachment.address} drop",
            f"ct state established,related ct mark 0x{attachment.generation:08x} accept",
            f"ip daddr {gateway} meta l4proto {{ tcp, udp }} th dport 53 accept",
            f"ip daddr {self.addressing.subnet} drop",
        ]
        # The policy's addresses sit in the rules themselves (anonymous sets), not in named sets filled by
        # `add element`: libnftables reads every named set's elements before adding to one, which made an attach
        # cost grow with the number of sandboxes on the host.
        if compiled.deny:
            rules.append(f"ip daddr {_anonymous(compiled.deny)} drop")
        if compiled.host:
            rules.append(f"fib daddr type local ip daddr {_anonymous(compiled.host)} {mark}")
        rules.append("fib daddr type local drop")
        if compiled.opened:
            rules.append(f"ip daddr {_anonymous(compiled.opened)} {mark}")
        rules.append("ip daddr @blocked drop")
        if compiled.allow:
            rules.append(f"ip daddr {_anonymous(compiled.allow)} {mark}")
        rules += [f"ip daddr @{n}_pins {mark}", "drop"]
        return rules

    def _detach_batch(self, name: str) -> str:
        """Everything of one sandbox's out of the table, whether or not all of it was there (each object is
        declared first, so that the deletes never fail)."""
        t = self.table
        lines = self._declarations(name)
        lines += [
            f'add element inet {t} sandboxes {{ "{name}" : jump {name} }}',
            f'delete element inet {t} sandboxes {{ "{name}" }}',
            f"delete chain inet {t} {name}",
            f"delete set inet {t} {name}_pins",
        ]
        return "\n".join(lines) + "\n"

    # -- what the kernel holds ----------------------------------------------------------------------------------

    def _listing(self, nft: Nft | None = None) -> list[dict[str, object]]:
        nft = nft or self._nft
        assert nft is not None
        items: list[dict[str, object]] = nft.json(f"list table inet {self.table}").get("nftables", [])
        return items

    def _table_exists(self, nft: Nft | None = None) -> bool:
        nft = nft or self._nft
        assert nft is not None
        tables = nft.json("list tables inet").get("nftables", [])
        return any(item.get("table", {}).get("name") == self.table for item in tables)

    def _chains(self) -> set[str]:
        return {str(item["chain"]["name"]) for item in self._listing() if "chain" in item}  # type: ignore[index]

    def _sandbox_chains(self) -> list[str]:
        return sorted(name for name in self._chains() if self.addressing.uid_of(name) is not None)

    def _has_guard(self) -> bool:
        return "guard" in self._chains()

    def _check_subnet_free(self) -> None:
        """Refuse a sandbox subnet that overlaps a network the host already routes (it would shadow it)."""
        text = Path("/proc/net/route").read_text().splitlines()[1:]
        for line in text:
            fields = line.split()
            if len(fields) < 8 or self.addressing.uid_of(fields[0]) is not None:
                continue
            destination = ipaddress.IPv4Address(struct.pack("<I", int(fields[1], 16)))
            mask = ipaddress.IPv4Address(struct.pack("<I", int(fields[7], 16)))
            if int(mask) == 0:
                continue
            network = ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)
            if network.overlaps(self.addressing.subnet):
                raise NetworkError(
                    f"the sandbox subnet {self.addressing.subnet} overlaps {network} on {fields[0]}: choose another"
                )


def _anonymous(addresses: Sequence[object]) -> str:
    return "{ " + ", ".join(str(address) for address in addresses) + " }"


def pin_seconds(ttl: int) -> int:
    return max(MIN_PIN, min(MAX_PIN, ttl))
