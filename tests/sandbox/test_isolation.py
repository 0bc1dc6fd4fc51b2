"""What a sandbox cannot do: see the host, write the system, reach the network, or be root."""

from __future__ import annotations

import os

from cove import AsyncSandbox
from tests.conftest import CoveServer


async def test_runs_as_unprivileged_user_in_its_own_pid_namespace(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as sandbox:
        ident = await sandbox.exec.run("id -u; id -un; echo $HOME; pwd; echo $SHELL; getent passwd user")
        uid, name, home, cwd, shell, entry = ident.stdout.split()
        assert uid != "0" and name == "user" and home == "/home/user" and cwd == "/workspace"
        assert shell == "/bin/bash" and entry.endswith(":/bin/bash"), "the login shell, as passwd says"
        pids = (await sandbox.exec.run("ls /proc | grep -E '^[0-9]+$'")).stdout.split()
        # Only the supervisor (PID 1) and this command's own processes exist; none of the host's.
        assert "1" in pids and len(pids) < 10
        assert str(os.getpid()) not in pids or int(max(pids, key=int)) < 100
        comm = (await sandbox.exec.run("cat /proc/1/cmdline | tr '\\0' ' '")).stdout
        assert "cove.guest.supervisor" in comm


async def test_host_system_is_read_only_and_private_dirs_are_writable(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as sandbox:
        for target in ("/usr/cove-test", "/etc/cove-test", "/cove-test"):
            result = await sandbox.exec.run(f"touch {target}")
            assert result.exit_code != 0, target
        for writable in ("/workspace/a", "/home/user/b", "/tmp/c"):
            assert (await sandbox.exec.run(f"echo ok > {writable} && cat {writable}")).stdout == "ok\n"


async def test_tmp_is_private_to_each_sandbox(connection: dict[str, str]) -> None:
    async with (
        await AsyncSandbox.create(**connection) as first,
        await AsyncSandbox.create(**connection) as second,
    ):
        await first.exec.run("echo secret > /tmp/mine")
        assert (await second.exec.run("test -e /tmp/mine")).exit_code == 1
        assert (await second.exec.run("test -e /workspace")).exit_code == 0


async def test_the_default_network_reaches_no_service_of_the_host(
    server: CoveServer, connection: dict[str, str]
) -> None:
    """Sandboxes get "egress" by default (tests/network has the whole matrix): the Cove API on the host's loopback
    is out of reach (the sandbox's loopback is its own), and "none" has no interface but its loopback."""
    probe = f"import socket; socket.create_connection(('127.0.0.1', {server.port}), timeout=2); print('reached')"
    async with await AsyncSandbox.create(**connection) as sandbox:
        assert sandbox.info.network.mode == "egress"
        result = await sandbox.exec.run(["python3", "-c", probe])
        assert result.exit_code != 0 and "reached" not in result.stdout
    async with await AsyncSandbox.create(network="none", **connection) as sandbox:
        names = "import socket; print(*(name for _, name in socket.if_nameindex()))"
        assert (await sandbox.exec.run(["python3", "-c", names])).stdout.split() == ["lo"]


SYSCALLS = r"""
import ctypes, errno, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def answer(number, *args):
    return "ok" if libc.syscall(number, *args) >= 0 else errno.errorcode[ctypes.get_errno()]
print(answer(272, 0x10000000), answer(308, 0, 0), answer(250, 0, 0, 0), answer(321, 0, 0, 0), answer(435, 0, 0))
worker = threading.Thread(target=print, args=("thread",))
worker.start(); worker.join()
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
"""


async def test_seccomp_refuses_new_namespaces_the_keyring_and_bpf(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as sandbox:
        userns = await sandbox.exec.run("unshare -Ur id")
        assert userns.exit_code != 0 and "Operation not permitted" in userns.stderr
        status = (await sandbox.exec.run("grep Seccomp: /proc/self/status")).stdout.split()
        assert status == ["Seccomp:", "2"]  # filter mode
        calls = await sandbox.exec.run(["python3", "-c", SYSCALLS])
        # unshare, setns, keyctl, bpf: EPERM; clone3: ENOSYS, so that libc falls back to clone, which threads and
        # child processes still use.
        assert calls.stdout.split("\n")[:3] == ["EPERM EPERM EPERM EPERM ENOSYS", "thread", "child"]
