"""Files: round trips, directory operations, large streams, and every way out refused."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cove import AsyncSandbox, CoveError, PathOutsideSandbox, Sandbox
from cove.sdk import Conflict, FileNotFound
from tests.conftest import CoveServer


@pytest.fixture
async def sandbox(connection: dict[str, str]) -> AsyncIterator[AsyncSandbox]:
    async with await AsyncSandbox.create(**connection) as sandbox:
        yield sandbox


async def test_text_and_binary_round_trip(sandbox: AsyncSandbox) -> None:
    await sandbox.files.write("notes/hello.txt", "héllo\n")
    assert await sandbox.files.read_text("/workspace/notes/hello.txt") == "héllo\n"
    blob = bytes(range(256)) * 1000
    info = await sandbox.files.write("/home/user/blob.bin", blob, mode=0o600)
    assert info.size == len(blob) and info.mode == 0o600 and info.type == "file"
    assert await sandbox.files.read("/home/user/blob.bin") == blob
    checksum = (await sandbox.exec.run("sha256sum /home/user/blob.bin")).stdout.split()[0]
    assert checksum == hashlib.sha256(blob).hexdigest()


async def test_directory_operations(sandbox: AsyncSandbox) -> None:
    await sandbox.files.mkdir("a/b/c")
    await sandbox.files.write("a/b/c/file.txt", "x")
    assert [e.name for e in await sandbox.files.list("a/b")] == ["c"]
    assert (await sandbox.files.stat("a/b/c")).type == "dir"
    assert await sandbox.files.exists("a/b/c/file.txt")
    moved = await sandbox.files.rename("a/b/c/file.txt", "a/moved.txt")
    assert moved.path == "/workspace/a/moved.txt"
    assert not await sandbox.files.exists("a/b/c/file.txt")
    with pytest.raises(Conflict):
        await sandbox.files.remove("a")
    await sandbox.files.remove("a", recursive=True)
    assert not await sandbox.files.exists("a")
    with pytest.raises(FileNotFound):
        await sandbox.files.read("a/moved.txt")
    with pytest.raises(FileNotFound):
        await sandbox.files.stat("nowhere")


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def test_100_mb_streams_through_without_being_held_in_memory(
    server: CoveServer, sandbox: AsyncSandbox, tmp_path: Path
) -> None:
    assert server.process is not None
    size = 100 * 1024 * 1024
    chunk = os.urandom(1024 * 1024)
    digest = hashlib.sha256(chunk * 100).hexdigest()
    peak_before = _vm_hwm_kib(server.process.pid)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield chunk

    info = await sandbox.files.write("big.bin", chunks())
    assert info.size == size
    target = tmp_path / "big.bin"
    assert await sandbox.files.download("big.bin", target) == size
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    # The server's peak resident memory grew by far less than the file it moved, both ways.
    assert _vm_hwm_kib(server.process.pid) - peak_before < 40 * 1024


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "/workspace/../etc/passwd",
        "/etc/passwd",
        "/usr/bin/env",
        "/proc/1/environ",
        "/root/.bashrc",
        "a/../../x",
    ],
)
async def test_paths_leaving_the_sandbox_are_refused(sandbox: AsyncSandbox, path: str) -> None:
    with pytest.raises(PathOutsideSandbox) as error:
        await sandbox.files.read(path)
    assert error.value.status == 403 and "outside" in error.value.message
    with pytest.raises(PathOutsideSandbox):
        await sandbox.files.write(path, "x")


async def test_symlinks_pointing_outside_are_refused(sandbox: AsyncSandbox) -> None:
    await sandbox.exec.run(
        "ln -s /etc /workspace/etc-link; ln -s /etc/hostname /workspace/host-file; "
        "ln -s /home/user /workspace/home-link"
    )
    for path in ("etc-link/passwd", "host-file"):
        with pytest.raises(PathOutsideSandbox):
            await sandbox.files.read(path)
    with pytest.raises(PathOutsideSandbox):
        await sandbox.files.write("etc-link/evil", "x")
    with pytest.raises(PathOutsideSandbox):
        await sandbox.files.list("etc-link")
    # A symlink that stays inside the sandbox is followed, and the link itself can be removed.
    await sandbox.files.write("home-link/inside.txt", "ok")
    assert await sandbox.files.read_text("/home/user/inside.txt") == "ok"
    await sandbox.files.remove("etc-link")
    assert not await sandbox.files.exists("etc-link")


async def test_refusals_are_clear_json_errors(server: CoveServer, sandbox: AsyncSandbox) -> None:
    with server.http() as client:
        reply = client.get(f"/v1/sandboxes/{sandbox.id}/files", params={"path": "../../etc/shadow"})
        assert reply.status_code == 403
        assert reply.json()["error"]["code"] == "path_outside_sandbox"
        reply = client.get(f"/v1/sandboxes/{sandbox.id}/files")
        assert reply.status_code == 422 and "path" in reply.json()["error"]["message"]
        reply = client.get(f"/v1/sandboxes/{sandbox.id}/files", params={"path": "missing.txt"})
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "file_not_found"


async def test_a_failed_download_leaves_no_local_file(sandbox: AsyncSandbox, tmp_path: Path) -> None:
    with pytest.raises(FileNotFound):
        await sandbox.files.download("missing.txt", tmp_path / "missing.txt")
    with pytest.raises(PathOutsideSandbox):
        await sandbox.files.download("/etc/passwd", tmp_path / "passwd")
    await sandbox.files.write("present.txt", "complete\n")
    (tmp_path / "present.txt").write_text("an older copy stays until the new one is complete\n")
    progress: list[tuple[int, int | None]] = []

    def progress_seen(done: int, total: int | None) -> None:
        progress.append((done, total))

    assert await sandbox.files.download("present.txt", tmp_path / "present.txt", on_progress=progress_seen) == 9
    assert (tmp_path / "present.txt").read_text() == "complete\n"
    assert progress[-1] == (9, 9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["present.txt"]  # nothing half-written left behind


def test_the_blocking_api_streams_downloads_and_knows_when_the_sandbox_runs(connection: dict[str, str]) -> None:
    with Sandbox.create(**connection) as sandbox:
        sandbox.files.write("big.bin", b"x" * 3_000_000)
        assert b"".join(sandbox.files.stream("big.bin")) == b"x" * 3_000_000
        assert sandbox.is_running()
    assert sandbox.info.state == "stopped"  # the with block killed it, and closed the handle
    with pytest.raises(CoveError, match="closed") as closed:
        sandbox.is_running()
    assert closed.value.code == "closed"
