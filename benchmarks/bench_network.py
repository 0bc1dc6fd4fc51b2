"""Egress networking: what attaching a network to a running sandbox costs, and bulk throughput into a sandbox.

The choices in ``cove.runtime.network`` rest on these numbers: veth + nftables driven in-process (rtnetlink and
libnftables) against the same steps as ``ip``/``nft`` processes and against pasta; and a bulk download from a
test host into a sandbox against the same download on the host itself (issue #12's goal: at least half).
Sandboxes here are stand-ins (processes in empty network namespaces, as warm-pool sandboxes are before a claim);
test hosts are network namespaces on this machine (``cove.testhosts``). Needs root.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

from benchmarks._harness import Stats, markdown_table, ms, print_table, verdict
from cove.runtime.netpolicy import NetworkPolicy
from cove.runtime.network import Networks
from cove.testhosts import NetnsProcess, TestNet, enter

PUBLIC = "203.0.113.10"
BULK_PORT = 9000
BULK_BYTES = 512 * 1024 * 1024
ATTACHES = 30
CROWD = 100  # sandboxes already attached while the attach is measured again
RUNS = 3

_SENDER = r"""
import socket, struct, threading
chunk = b"\0" * (1 << 20)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 9000)); s.listen(8)
def send(c):
    with c:
        (n,) = struct.unpack("!Q", c.recv(8))
        view = memoryview(chunk)
        while n > 0:
            n -= c.send(view[: min(n, len(chunk))])
print("ready", flush=True)
while True:
    c, _ = s.accept(); threading.Thread(target=send, args=(c,), daemon=True).start()
"""

_RECEIVER = r"""
import socket, struct, sys, time
n = int(sys.argv[2]); buf = bytearray(1 << 20); got = 0
started = time.perf_counter()
with socket.create_connection((sys.argv[1], 9000), timeout=30) as s:
    s.sendall(struct.pack("!Q", n))
    while got < n:
        k = s.recv_into(buf)
        if not k: break
        got += k
print(got / (time.perf_counter() - started) / 1e6)
"""


def _download(prefix: list[str]) -> float:
    """MB/s of one BULK_BYTES download from the test host, by a receiver started with ``prefix``."""
    argv = [*prefix, sys.executable, "-c", _RECEIVER, PUBLIC, str(BULK_BYTES)]
    return float(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout)


def _best_of(prefix: list[str]) -> tuple[float, float]:
    rates = [_download(prefix) for _ in range(RUNS)]
    return max(rates), statistics.median(rates)


@contextlib.contextmanager
def _stand_ins(count: int) -> Iterator[list[NetnsProcess]]:
    made: list[NetnsProcess] = []
    try:
        for _ in range(count):
            made.append(NetnsProcess())
        yield made
    finally:
        for process in made:
            process.close()


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)


def _attach_with_processes(networks: Networks, uid: int, pid: int) -> None:
    """The same veth, addresses, routes and rules as ``Networks.attach``, made by ``ip`` and ``nft`` processes."""
    name, address, gateway = f"cbp{uid}", networks.addressing.address(uid), networks.gateway
    _run("ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", str(pid))
    _run("ip", "addr", "add", f"{gateway}/32", "dev", name)
    _run("ip", "link", "set", name, "up")
    _run("ip", "route", "add", f"{address}/32", "dev", name, "src", str(gateway))
    _run("nsenter", f"--net=/proc/{pid}/ns/net", "ip", "addr", "add", f"{address}/32", "dev", "eth0")
    _run("nsenter", f"--net=/proc/{pid}/ns/net", "ip", "link", "set", "eth0", "up")
    _run(
        "nsenter",
        f"--net=/proc/{pid}/ns/net",
        "ip",
        "route",
        "add",
        "default",
        "via",
        str(gateway),
        "dev",
        "eth0",
        "onlink",
    )
    table = "cove_bench_processes"
    rules = "\n".join(f"add rule inet {table} {name} {rule}" for rule in ("ip daddr 10.0.0.0/8 drop", "accept"))
    _run("nft", "-f", "-", stdin=f"add table inet {table}\nadd chain inet {table} {name}\n{rules}\n")


def _quiet(*argv: str) -> None:
    subprocess.run(argv, capture_output=True, check=False)


def _undo_process_attaches(links: list[str]) -> None:
    for link in links:
        _quiet("ip", "link", "del", link)
    _quiet("nft", "delete", "table", "inet", "cove_bench_processes")


async def _measure_attach(networks: Networks) -> dict[str, Stats]:
    results: dict[str, Stats] = {}
    policy = NetworkPolicy.parse({"allow": ["0.0.0.0/0", "10.251.7.0/24"], "deny": ["198.51.100.0/24"]})
    uid = 700_000
    with _stand_ins(ATTACHES) as alone:
        samples = []
        for process in alone:
            uid += 1
            started = time.perf_counter()
            await networks.attach(f"sbx_{uid}", uid, process.pid, policy)
            samples.append(time.perf_counter() - started)
        results["veth + nft, in-process (netlink, libnftables)"] = Stats.of(samples)
        updates = []
        for index, _ in enumerate(alone):
            started = time.perf_counter()
            await networks.update(f"sbx_{700_001 + index}", NetworkPolicy.parse({"deny": ["198.51.100.0/24"]}))
            updates.append(time.perf_counter() - started)
        results["policy change (update)"] = Stats.of(updates)
    with _stand_ins(CROWD + 10) as crowd:
        for process in crowd[:CROWD]:
            uid += 1
            await networks.attach(f"sbx_{uid}", uid, process.pid, policy)
        samples = []
        for process in crowd[CROWD:]:
            uid += 1
            started = time.perf_counter()
            await networks.attach(f"sbx_{uid}", uid, process.pid, policy)
            samples.append(time.perf_counter() - started)
        results[f"veth + nft, in-process, {CROWD} sandboxes attached"] = Stats.of(samples)
    with _stand_ins(10) as spawned:
        samples = []
        try:
            for process in spawned:
                uid += 1
                started = time.perf_counter()
                await asyncio.to_thread(_attach_with_processes, networks, uid, process.pid)
                samples.append(time.perf_counter() - started)
        finally:
            await asyncio.to_thread(_undo_process_attaches, [f"cbp{uid - index}" for index in range(len(spawned))])
        results["veth + nft, ip/nft processes"] = Stats.of(samples)
    return results


def _pasta_attach(process: NetnsProcess, name: str) -> float:
    """Seconds for pasta to join and configure the namespace (it needs it by name: as root it cannot open
    /proc/PID/ns/net after dropping privileges)."""
    _run("ip", "netns", "attach", name, str(process.pid))
    started = time.perf_counter()
    _run("pasta", "--config-net", "-q", "--runas", "0", "--no-map-gw", "--netns", name, "-t", "none", "-u", "none")
    return time.perf_counter() - started


async def main() -> str:
    networks = Networks(subnet="10.253.0.0/24", table="cove_bench", prefix="cb")
    with TestNet() as net:
        host = net.host(PUBLIC)
        sender = host.popen([sys.executable, "-c", _SENDER], stdout=subprocess.PIPE)
        assert sender.stdout is not None and sender.stdout.readline().strip() == "ready"
        await networks.start()
        try:
            attach = await _measure_attach(networks)
            await networks.teardown()
            await networks.start()
            with _stand_ins(2) as (veth_box, pasta_box):
                await networks.attach("sbx_bulk", 799_999, veth_box.pid, NetworkPolicy.parse("egress"))
                pasta = Stats.of([_pasta_attach(pasta_box, "cove-bench-pasta")])
                throughput = {
                    "the host itself": _best_of([]),
                    "sandbox, veth + nftables (egress)": _best_of(enter(veth_box.pid)),
                    "sandbox, pasta": _best_of(enter(pasta_box.pid)),
                }
        finally:
            await asyncio.to_thread(_quiet, "ip", "netns", "del", "cove-bench-pasta")
            await networks.teardown()
            await networks.close()
    attach["pasta (process start, joins by name)"] = pasta
    rows = [[name, s.n, ms(s.p50), ms(s.p95), ms(s.max)] for name, s in attach.items()]
    print_table("Attach a network to a running sandbox (ms)", ["how", "n", "p50", "p95", "max"], rows)
    host_rate = throughput["the host itself"][0]
    trows = [
        [name, f"{best:.0f}", f"{median:.0f}", f"{best / host_rate:.2f}"] for name, (best, median) in throughput.items()
    ]
    print_table(
        f"Bulk download, {BULK_BYTES >> 20} MiB from a test host (MB/s)", ["into", "best", "median", "x host"], trows
    )
    in_process = attach["veth + nft, in-process (netlink, libnftables)"]
    crowded = attach[f"veth + nft, in-process, {CROWD} sandboxes attached"]
    veth_ratio = throughput["sandbox, veth + nftables (egress)"][0] / host_rate
    return "\n\n".join(
        [
            "## Network (egress)",
            "Attaching the egress network to a running sandbox (a warm-pool claim), in ms. Stand-in sandboxes are "
            "processes in empty network namespaces; the policy has allow, open and deny rules.",
            markdown_table(["how", "n", "p50", "p95", "max"], rows),
            f"Goal: attach costs a few ms (TTI within 5 ms of `none`): p50 {ms(in_process.p50)} ms alone — "
            f"{verdict(in_process.p50 < 5)}; {ms(crowded.p50)} ms with {CROWD} sandboxes attached — "
            f"{verdict(crowded.p50 < 5)} (libnftables 1.0.6 reads every set's elements before an `add element`: "
            "docs/networking.md, what remains).",
            f"Bulk download of {BULK_BYTES >> 20} MiB from a test host, one TCP stream, best and median of {RUNS}:",
            markdown_table(["into", "best MB/s", "median MB/s", "x host"], trows),
            f"Goal: a sandbox gets at least half the host's throughput: {veth_ratio:.2f}x — "
            f"{verdict(veth_ratio >= 0.5)}.",
        ]
    )
