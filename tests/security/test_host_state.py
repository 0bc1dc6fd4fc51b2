"""What a sandbox leaves on the host: checkpoint layers without setuid or setgid bits, every mount of its files
nosuid and nodev, ``$COVE_HOME`` private; and after a crash, nothing that no running sandbox owns."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from cove import AsyncSandbox, CoveError
from tests.conftest import CoveServer
from tests.security.conftest import host_root, sh


def _mounts_under(path: Path) -> list[tuple[str, set[str]]]:
    """(mount point, its per-mount options) of every mount at or below ``path``."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path) or fields[4].startswith(f"{path}/"):
            found.append((fields[4], set(fields[5].split(","))))
    return found


@pytest.mark.parametrize("files", [1, 400], ids=["copied-in-process", "copied-by-tar"])
async def test_checkpoint_layers_carry_no_setuid_or_setgid_bits(
    server: CoveServer, attacker: AsyncSandbox, files: int
) -> None:
    await sh(attacker, f"cd /workspace && seq 1 {files} | xargs touch && cp /usr/bin/id suid && cp /usr/bin/id sgid")
    await sh(attacker, "chmod 4755 /workspace/suid && chmod 2755 /workspace/sgid")
    checkpoint = await attacker.checkpoint("with-setuid")
    layers = [*server.home.glob("layers/*/workspace/suid"), *server.home.glob("layers/*/workspace/sgid")]
    assert len(layers) == 2
    for path in layers:
        assert stat.S_IMODE(path.stat().st_mode) & (stat.S_ISUID | stat.S_ISGID) == 0, oct(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) & 0o755 == 0o755  # the rest of the mode is kept
    await attacker.delete_checkpoint(checkpoint.id)


async def test_every_mount_of_a_sandboxs_files_is_nosuid_and_nodev(server: CoveServer, attacker: AsyncSandbox) -> None:
    await attacker.checkpoint("mounted")  # the storage's mounts all exist now
    mounts = _mounts_under(host_root(server, attacker)) + _mounts_under(server.home / "views" / attacker.id)
    assert len(mounts) >= 4  # the overlay, the idmapped layers, the slots and the files bound onto them
    for point, options in mounts:
        assert {"nosuid", "nodev"} <= options, (point, options)
    setuid = await attacker.exec.run("cp /usr/bin/id /workspace/id && chmod 4755 /workspace/id && /workspace/id -u")
    assert setuid.stdout.strip() != "0"


def test_the_home_and_the_database_are_private(server: CoveServer) -> None:
    assert stat.S_IMODE(server.home.stat().st_mode) == 0o700
    for name in ("cove.db", "cove.db-wal", "cove.db-shm", "admin_key"):
        path = server.home / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


async def test_a_restart_frees_what_no_running_sandbox_owns(own_server: CoveServer) -> None:
    connection = {"url": own_server.url, "api_key": own_server.api_key}
    kept = await AsyncSandbox.create(**connection)
    stuck = await AsyncSandbox.create(**connection)
    with own_server.http() as client:
        pooled = client.get("/v1/pool", params={"wait": 30}).json()["ready"]
    assert pooled
    own_server.kill()  # SIGKILL: the pool is never drained, a create is caught half-way
    with sqlite3.connect(own_server.home / "cove.db") as db:
        db.execute("UPDATE sandboxes SET state = 'starting' WHERE id = ?", (stuck.id,))
    own_server.start()
    with own_server.http() as client:
        ready = set(client.get("/v1/pool", params={"wait": 30}).json()["ready"])
        assert client.get(f"/v1/sandboxes/{stuck.id}").json()["state"] == "failed"
    sandboxes = {p.name for p in (own_server.home / "sandboxes").iterdir()}
    assert kept.id in sandboxes and stuck.id not in sandboxes and not set(pooled) & sandboxes
    assert sandboxes == {kept.id} | ready
    for gone in [stuck.id, *pooled]:
        assert not _mounts_under(own_server.home / "sandboxes" / gone)
        assert not list(Path("/sys/fs/cgroup").glob(f"*/cove/{gone}"))
        assert not any(f"COVE_SANDBOX_ID={gone}".encode() in _environ(pid) for pid in _pids())
    assert (await kept.exec.run("echo kept")).stdout == "kept\n"
    await kept.close()
    await stuck.close()


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


async def test_a_create_that_fails_keeps_the_pool(server: CoveServer, connection: dict[str, str]) -> None:
    with server.http() as client:
        ready = client.get("/v1/pool", params={"wait": 30}).json()["ready"]
        assert client.post("/v1/sandboxes", json={"cwd": "/etc"}).status_code == 422
        assert client.post("/v1/sandboxes", json={"from_checkpoint": "ckpt_missing"}).status_code == 404
        assert client.get("/v1/pool").json()["ready"] == ready
    with pytest.raises(CoveError):
        await AsyncSandbox.create(limits={"memory_mb": 1}, **connection)
    with server.http() as client:
        assert client.get("/v1/pool").json()["ready"] == ready
