"""A real bubblewrap sandbox given a network after it started (a warm-pool claim), and a server restart."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cove.runtime.bwrap import python_executable, root_links
from cove.runtime.netpolicy import NetworkPolicy
from cove.runtime.network import LiveSandbox, Networks, resolv_conf
from cove.testhosts import NetnsProcess
from tests.network.conftest import METADATA, OTHER, PORT, PUBLIC, Egress, probe

# Inside the sandbox, as an unprivileged user: wait for the go, then resolve and connect as any program would.
INSIDE = r"""
import json, socket, sys
sys.stdin.readline()
out = {}
try:
    out["resolved"] = sorted({a[4][0] for a in socket.getaddrinfo("allowed.test", 8080, socket.AF_INET)})
    out["allowed"] = socket.create_connection(("allowed.test", 8080), timeout=1).recv(100).decode()
except Exception as exc:
    out["error"] = repr(exc)
for name, target in (("metadata", (sys.argv[1], 80)), ("other", (sys.argv[2], 8080))):
    try:
        out[name] = socket.create_connection(target, timeout=1).recv(100).decode()
    except Exception as exc:
        out[name] = "error: " + type(exc).__name__
print(json.dumps(out), flush=True)
"""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make system-deps)")
async def test_a_bwrap_sandbox_gets_egress_after_it_started(egress: Egress, tmp_path: Path) -> None:
    """As a warm-pool claim would: bwrap starts with --unshare-net and Cove's resolv.conf bound over the host's;
    the network is attached to its PID 1's namespace afterwards; its programs resolve through the forwarder."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(resolv_conf(egress.networks.gateway))
    info_r, info_w = os.pipe()
    os.set_blocking(info_r, False)
    # The system as Cove binds it (not the host's whole /: its mounts, other sandboxes' among them, cost bwrap a
    # recursive remount each, which stalled this test under a busy suite).
    base = os.path.realpath(sys.base_prefix)
    argv = ["bwrap", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", *root_links(), "--ro-bind", base, base]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    argv += ["--ro-bind", str(resolv), "/etc/resolv.conf", "--unshare-net", "--unshare-pid", "--die-with-parent"]
    argv += ["--info-fd", str(info_w), "--", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    argv += [python_executable(), "-I", "-c", INSIDE, METADATA, OTHER]
    # Output goes to files, not pipes: the process's exit is all there is to wait for, and a stall fails the test
    # with what bwrap said instead of hanging it.
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with out_path.open("wb") as out_file, err_path.open("wb") as err_file:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=out_file,
            stderr=err_file,
            pass_fds=[info_w],
            start_new_session=True,
        )
    os.close(info_w)
    try:
        async with asyncio.timeout(60):
            init_pid = int(json.loads(await _read_all(info_r))["child-pid"])
            sandbox_id = "sbx_bwrap"
            policy = NetworkPolicy.parse({"allow": ["allowed.test"]})
            await egress.networks.attach(sandbox_id, egress.next_uid(), init_pid, policy)
            await process.communicate(b"go\n")
    except TimeoutError:
        pytest.fail(f"the sandbox did not finish: bwrap said {err_path.read_text()!r}")
    finally:
        os.close(info_r)
        if process.returncode is None:
            # The whole group: bwrap's child waits for its parent's go before it asks to die with it, so killing
            # the parent alone can leave the child blocked for ever.
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    out = out_path.read_text()
    result = json.loads(out)
    assert result["resolved"] == [PUBLIC], result
    assert result["allowed"] == PUBLIC
    assert result["metadata"].startswith("error") and result["other"].startswith("error")


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _read_all(fd: int) -> bytes:
    """bwrap's JSON info from the non-blocking pipe ``fd``, read on the loop (a thread blocked in a read would outlive a
    failed test)."""
    loop = asyncio.get_running_loop()
    data = b""
    while not data.rstrip().endswith(b"}"):
        readable = loop.create_future()
        loop.add_reader(fd, _settle, readable)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


async def test_a_restarted_server_keeps_live_sandboxes_and_clears_the_rest(
    egress: Egress, sandboxes: Callable[[], NetnsProcess]
) -> None:
    """The kernel keeps the veths and rules across a restart; ``start`` keeps the live sandboxes' (with their
    policy put back) and removes what belongs to sandboxes that are gone."""
    live, gone = sandboxes(), sandboxes()
    live_uid, gone_uid = egress.next_uid(), egress.next_uid()
    policy = NetworkPolicy.parse({"deny": [OTHER]})
    await egress.networks.attach("sbx_live", live_uid, live.pid, policy)
    await egress.networks.attach("sbx_gone", gone_uid, gone.pid, NetworkPolicy.parse("egress"))
    old = egress.networks
    restarted = Networks(subnet=str(old.addressing.subnet), table=old.table, prefix=old.addressing.prefix)
    try:
        await restarted.start([LiveSandbox("sbx_live", live_uid, live.pid, policy)])
        assert restarted.describe("sbx_live").policy == policy
        public, other = await probe(live, [(PUBLIC, PORT, "tcp"), (OTHER, PORT, "tcp")])
        assert public == PUBLIC and str(other).startswith("error")
        assert str((await probe(gone, [(PUBLIC, PORT, "tcp")]))[0]).startswith("error")
        links = (await asyncio.create_subprocess_exec("ip", "-o", "link", stdout=asyncio.subprocess.PIPE)).stdout
        assert links is not None
        names = (await links.read()).decode()
        assert old.addressing.interface(live_uid) in names
        assert old.addressing.interface(gone_uid) not in names
    finally:
        await restarted.close()
