"""Test hosts for the network tests and benchmark: network namespaces on this machine, joined to it by veths.

A test host stands for a machine elsewhere — "the internet" at a TEST-NET address (198.51.100.0/24,
203.0.113.0/24), a private-range machine (10.251.x.y), the metadata service (169.254.169.254) — and is routed to
from the host like any other destination, so a sandbox reaches it through the same NAT and firewall as it would a
real one. Nothing here ever sends a packet to an address that is not a test host's or the loopback's.

Every namespace and veth made here is removed by ``TestNet.close`` (also on failure: use it as a context manager).
Test hosts have fixed addresses, so one ``TestNet`` lives on a machine at a time: it holds a host-wide lock from
enter to close, and on enter removes the test hosts a killed run left behind (no live ``TestNet`` owns them).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The host's side of every test host's veth (the same address on each, like Cove's sandbox gateway).
HOST_SIDE = ipaddress.IPv4Address("10.251.255.254")
_NETNS_PREFIX = "cove-th-"
_LOCK = Path("/run/cove-testhosts.lock")

# A TCP (and UDP) service answering its host's name on every port it is given: what probes connect to.
_SERVICE = r"""
import socket, sys, threading
name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        try: c.sendall(name.encode())
        finally: c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(2048); s.sendto(name.encode(), peer)
for port in ports:
    threading.Thread(target=tcp, args=(port,), daemon=True).start()
    threading.Thread(target=udp, args=(port,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

# Connects to every target at once and prints {"host:port/proto": answer or error}: one process per matrix row.
PROBE = r"""
import json, socket, sys, concurrent.futures as cf
timeout = float(sys.argv[1]); targets = json.loads(sys.argv[2])
def probe(target):
    host, port, proto = target
    try:
        if proto == "name":
            return sorted({a[4][0] for a in socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)})
        if proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout)
            s.sendto(b"?", (host, port)); return s.recv(2048).decode()
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout); return s.recv(2048).decode()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
with cf.ThreadPoolExecutor(len(targets) or 1) as pool:
    results = list(pool.map(probe, targets))
print(json.dumps({f"{h}:{p}/{proto}": r for (h, p, proto), r in zip(targets, results)}))
"""


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


@dataclass
class TestHost:
    """One namespace with ``address`` on its ``eth0`` and a default route back through the host."""

    netns: str
    link: str
    address: ipaddress.IPv4Address
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.address)

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
        """A process inside this host; stopped by ``TestNet.close``."""
        process: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.netns, *argv], text=True, **kwargs
        )
        self.processes.append(process)
        return process

    def serve(self, *ports: int, name: str | None = None) -> None:
        """Answer ``name`` (default: the address) on each TCP and UDP port."""
        _wait_ready(
            self.popen([sys.executable, "-c", _SERVICE, name or self.name, *map(str, ports)], stdout=subprocess.PIPE)
        )


class TestNet:
    """Makes test hosts and removes them all on ``close``; ``tag`` keeps parallel runs apart."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.hosts: list[TestHost] = []
        self._count = 0
        self._lock: int | None = None

    def __enter__(self) -> TestNet:
        self._lock = os.open(_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        _remove_stale_hosts()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def host(self, address: str) -> TestHost:
        """A test host at ``address``, routed from the host through its own veth."""
        self._count += 1
        ip = ipaddress.IPv4Address(address)
        netns, link = f"{_NETNS_PREFIX}{self.tag}-{self._count}", f"th{self.tag}{self._count}"
        host = TestHost(netns, link, ip)
        self.hosts.append(host)
        run("ip", "netns", "add", netns)
        run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns)
        run("ip", "addr", "add", f"{HOST_SIDE}/32", "dev", link)
        run("ip", "link", "set", link, "up")
        run("ip", "route", "add", f"{ip}/32", "dev", link, "src", str(HOST_SIDE))
        inside = ("ip", "-n", netns)
        run(*inside, "link", "set", "lo", "up")
        run(*inside, "addr", "add", f"{ip}/32", "dev", "eth0")
        run(*inside, "link", "set", "eth0", "up")
        run(*inside, "route", "add", "default", "via", str(HOST_SIDE), "dev", "eth0", "onlink")
        return host

    def close(self) -> None:
        for host in self.hosts:
            for process in host.processes:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
            run("ip", "link", "del", host.link, check=False)
            run("ip", "netns", "del", host.netns, check=False)
        self.hosts.clear()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _remove_stale_hosts() -> None:
    """Removes every test host's namespace, with what still runs in it (its veth goes with it). Called under the
    lock, so none of them belongs to a live ``TestNet``."""
    for line in run("ip", "netns", "list").stdout.splitlines():
        netns = line.split(" ", 1)[0]
        if not netns.startswith(_NETNS_PREFIX):
            continue
        for pid in run("ip", "netns", "pids", netns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        run("ip", "netns", "del", netns, check=False)


class NetnsProcess:
    """A stand-in sandbox: a process in a network namespace of its own (``unshare --net``) with only ``lo``,
    as a warm-pool sandbox has before it is claimed; with ``resolv_conf``, also a mount namespace in which that
    file is bound over /etc/resolv.conf, as Cove binds its forwarder's into sandboxes."""

    def __init__(self, resolv_conf: Path | None = None) -> None:
        script = "ip link set lo up; echo ready; exec sleep 600"
        argv = ["unshare", "--net", "--", "sh", "-c", script]
        if resolv_conf is not None:
            script = f"mount --bind {shlex.quote(str(resolv_conf))} /etc/resolv.conf; {script}"
            argv = ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", script]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("unshare --net did not start")
        self.processes: list[subprocess.Popen[str]] = []

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
        """A process in this namespace; stopped by ``close``."""
        process: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            [*enter(self.pid), *argv], text=True, **kwargs
        )
        self.processes.append(process)
        return process

    def serve(self, *ports: int, name: str = "sandbox") -> None:
        """Answer ``name`` on each TCP and UDP port, from inside (what another sandbox must not reach)."""
        _wait_ready(self.popen([sys.executable, "-c", _SERVICE, name, *map(str, ports)], stdout=subprocess.PIPE))

    @property
    def pid(self) -> int:
        return self.process.pid

    def probe(self, targets: Sequence[tuple[str, int, str]], timeout: float = 1.0) -> dict[str, object]:
        """Try every target from inside; see ``PROBE``."""
        return probe_in(self.pid, targets, timeout)

    def close(self) -> None:
        for process in [*self.processes, self.process]:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def __enter__(self) -> NetnsProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def enter(pid: int) -> list[str]:
    """The command prefix that runs a command in ``pid``'s network and mount namespaces."""
    return ["nsenter", f"--net=/proc/{pid}/ns/net", f"--mount=/proc/{pid}/ns/mnt"]


def probe_in(pid: int, targets: Sequence[tuple[str, int, str]], timeout: float = 1.0) -> dict[str, object]:
    argv = [*enter(pid), sys.executable, "-c", PROBE, str(timeout), json.dumps(targets)]
    result: dict[str, object] = json.loads(run(*argv).stdout)
    return result


def _wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{process.args!r} did not start")


def host_address() -> ipaddress.IPv4Address | None:
    """One of the host's own non-loopback IPv4 addresses (not a test host's side), if it has one."""
    for line in run("ip", "-4", "-o", "addr", "show", "scope", "global").stdout.splitlines():
        fields = line.split()
        address = ipaddress.IPv4Interface(fields[3]).ip
        if address != HOST_SIDE and not fields[1].startswith(("th", "cv", "ct")):
            return address
    return None
