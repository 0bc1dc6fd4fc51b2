"""Checkpoints and forks against a real server and real bwrap: files, independence, restore, consistency."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from cove import AsyncSandbox, SandboxNotRunning
from cove.sdk import CheckpointNotFound
from tests.checkpoints.conftest import home_for
from tests.conftest import CoveServer, until


def layers_on_disk(server: CoveServer) -> set[str]:
    return {p.name for p in (server.home / "layers").iterdir()} - {"base"}


async def test_files_and_transcripts_carry_over_to_a_fork(connection: dict[str, str], storage_driver: str) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        assert origin.info.storage_driver == storage_driver
        await origin.files.write("src/app.py", "print('hi')\n")
        await origin.files.write("/home/user/.claude/projects/-workspace/s.jsonl", "{}\n")
        await origin.exec.run("ln -s app.py src/link.py && chmod 700 src/app.py && mkfifo src/pipe")
        checkpoint = await origin.checkpoint("setup")
        assert checkpoint.name == "setup" and checkpoint.sandbox_id == origin.id and checkpoint.size_bytes > 0
        async with await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection) as fork:
            assert fork.id != origin.id
            assert await fork.files.read_text("src/app.py") == "print('hi')\n"
            assert await fork.files.read_text("/home/user/.claude/projects/-workspace/s.jsonl") == "{}\n"
            listing = await fork.exec.run("stat -c '%n %A %U' src/app.py src/link.py src/pipe && id -un")
            assert listing.stdout.splitlines() == [
                "src/app.py -rwx------ user",
                "src/link.py lrwxrwxrwx user",
                "src/pipe prw-r--r-- user",
                "user",
            ]
            # The fork's user owns what it inherited: it can change and remove it.
            assert (await fork.exec.run("echo more >> src/app.py && rm src/link.py && touch ~/new")).exit_code == 0


async def test_fork_and_origin_are_independent_both_ways(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.exec.run("mkdir d && for f in a b c; do echo $f > d/$f; done")
        checkpoint = await origin.checkpoint()
        async with await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection) as fork:
            await origin.exec.run("echo origin > d/a && rm d/b && echo new > d/o")
            await fork.exec.run("echo fork > d/c && rm d/a && echo new > d/f")
            assert (await origin.exec.run("cd d && grep -H . *")).stdout.split() == [
                "a:origin",
                "c:c",
                "o:new",
            ]
            assert (await fork.exec.run("cd d && grep -H . *")).stdout.split() == ["b:b", "c:fork", "f:new"]
            # Checkpoints taken after the split see their own side only, deletions included.
            later = await fork.checkpoint()
            async with await AsyncSandbox.create(from_checkpoint=later.id, **connection) as grandchild:
                assert (await grandchild.exec.run("cd d && grep -H . *")).stdout.split() == [
                    "b:b",
                    "c:fork",
                    "f:new",
                ]


async def test_many_forks_of_one_checkpoint(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.files.write("shared.txt", "base\n")
        checkpoint = await origin.checkpoint()
        forks = await asyncio.gather(
            *(AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection) for _ in range(6))
        )
        try:
            await asyncio.gather(*(f.exec.run(f"echo {i} >> shared.txt") for i, f in enumerate(forks)))
            contents = await asyncio.gather(*(f.files.read_text("shared.txt") for f in forks))
            assert contents == [f"base\n{i}\n" for i in range(6)]
            assert await origin.files.read_text("shared.txt") == "base\n"
        finally:
            await asyncio.gather(*(f.kill() for f in forks))
            await asyncio.gather(*(f.close() for f in forks))


async def test_fork_of_a_fork(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.exec.run("echo 1 > one && echo x > doomed")
        first = await origin.checkpoint()
        async with await AsyncSandbox.create(from_checkpoint=first.id, **connection) as child:
            await child.exec.run("echo 2 > two && rm doomed && mkdir -p deep/er && echo 3 > deep/er/three")
            second = await child.checkpoint()
            async with await AsyncSandbox.create(from_checkpoint=second.id, **connection) as grandchild:
                found = await grandchild.exec.run("find . -type f | sort")
                assert found.stdout.split() == ["./deep/er/three", "./one", "./two"]
                await grandchild.exec.run("rm -r deep")
                assert (await child.exec.run("cat deep/er/three")).stdout == "3\n"


async def test_restore_in_place(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as sandbox:
        await sandbox.exec.run("echo v1 > state && echo keep > /home/user/.profile_note")
        v1 = await sandbox.checkpoint("v1")
        await sandbox.exec.run("echo v2 > state && echo junk > extra && rm /home/user/.profile_note && echo t > /tmp/t")
        sleeper = await sandbox.exec.background("sleep 600")
        info = await sandbox.restore(v1.id)
        assert info.id == sandbox.id and info.state == "running"
        assert (await sandbox.exec.run("cat state /home/user/.profile_note")).stdout == "v1\nkeep\n"
        assert (await sandbox.exec.run("ls extra /tmp/t")).exit_code != 0
        # Processes are not part of a checkpoint: the supervisor is new, the old processes are gone.
        assert sleeper.id not in [p.id for p in await sandbox.exec.list()]
        assert "sleep 600" not in (await sandbox.exec.run("ps -eo args")).stdout
        # Life goes on after a restore: new checkpoints and forks work from the restored state.
        await sandbox.exec.run("echo v3 > state")
        v3 = await sandbox.checkpoint()
        async with await AsyncSandbox.create(from_checkpoint=v3.id, **connection) as fork:
            assert (await fork.exec.run("cat state; ls")).stdout.split() == ["v3", "state"]


async def writer_passed(sandbox: AsyncSandbox, count: int) -> int:
    """Wait until the writer's counter reaches ``count`` (it advances by itself); returns the counter seen."""
    deadline = time.monotonic() + 30
    while True:
        seen = await sandbox.exec.run("cat counter 2>/dev/null || echo 0")
        if int(seen.stdout or 0) >= count:
            return int(seen.stdout)
        assert time.monotonic() < deadline, f"the writer stalled at {seen.stdout.strip()}"


async def test_checkpoint_is_a_point_in_time_view(connection: dict[str, str]) -> None:
    writer = (
        "import os\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    with open('log', 'a') as log:\n"
        "        log.write(f'line {i:08d} ' + 'x' * 300 + '\\n')\n"
        "    with open('counter.tmp', 'w') as counter:\n"
        "        counter.write(str(i))\n"
        "    os.replace('counter.tmp', 'counter')\n"
    )
    async with await AsyncSandbox.create(**connection) as sandbox:
        await sandbox.files.write("writer.py", writer)
        await sandbox.exec.background(["python3", "writer.py"])
        checkpoints = []
        written = 0
        for _ in range(3):
            written = await writer_passed(sandbox, written + 50)  # checkpoint while it writes, not before
            checkpoints.append(await sandbox.checkpoint())
        for checkpoint in checkpoints:
            async with await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection) as fork:
                lines = (await fork.files.read_text("log")).splitlines()
                counter = int(await fork.files.read_text("counter"))
                assert lines, "the writer had written nothing"
                assert all(line == f"line {n:08d} " + "x" * 300 for n, line in enumerate(lines, 1))
                # The counter follows the line in the same step: frozen between the two, it lags by one.
                assert counter in (len(lines), len(lines) - 1)


async def test_delete_is_reference_counted(server: CoveServer, connection: dict[str, str], storage_driver: str) -> None:
    origin = await AsyncSandbox.create(**connection)
    await origin.files.write("data", "payload\n")
    before = layers_on_disk(server)
    checkpoint = await origin.checkpoint()
    layers = layers_on_disk(server) - before
    assert layers
    fork = await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection)
    await origin.kill()
    deleted = await origin.delete_checkpoint(checkpoint.id)
    assert deleted.id == checkpoint.id
    with pytest.raises(CheckpointNotFound):
        await origin.get_checkpoint(checkpoint.id)
    with pytest.raises(CheckpointNotFound):
        await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection)
    assert await fork.files.read_text("data") == "payload\n"
    if storage_driver == "overlayfs":
        # The fork still stands on the checkpoint's layers: they stay until it is gone.
        assert layers <= layers_on_disk(server)
    else:
        # A btrfs fork is a snapshot of its own: the checkpoint's snapshot goes at once, btrfs keeps the blocks.
        assert not layers & layers_on_disk(server)
    await fork.kill()
    assert not layers & layers_on_disk(server)
    await fork.close()
    await origin.close()


async def test_kill_frees_the_sandbox_layers(server: CoveServer, connection: dict[str, str]) -> None:
    sandbox = await AsyncSandbox.create(**connection)
    root = server.home / "sandboxes" / sandbox.id
    await sandbox.exec.run("head -c 1000000 /dev/urandom > blob")
    assert (root / "merged" / "workspace" / "blob").exists()
    before = layers_on_disk(server)
    checkpoint = await sandbox.checkpoint()
    layers = layers_on_disk(server) - before
    assert layers
    await sandbox.kill()
    assert not root.exists()
    with pytest.raises(SandboxNotRunning):
        await sandbox.checkpoint()
    # The checkpoint outlives its sandbox (it can still be forked) until it is deleted.
    async with await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection) as fork:
        assert (await fork.exec.run("stat -c %s blob")).stdout == "1000000\n"
    await sandbox.delete_checkpoint(checkpoint.id)
    assert not layers & layers_on_disk(server)
    await sandbox.close()


async def test_a_chain_of_100_checkpoints(server: CoveServer, connection: dict[str, str], storage_driver: str) -> None:
    before = layers_on_disk(server)
    async with await AsyncSandbox.create(**connection) as sandbox:
        checkpoints = []
        for i in range(100):
            await sandbox.exec.run(f"echo {i} > f{i:03d} && rm -f f{i - 3:03d}")
            checkpoints.append(await sandbox.checkpoint(f"c{i}"))
        assert [c.name for c in await sandbox.checkpoints()] == [f"c{i}" for i in range(100)]
        for index in (0, 49, 99):
            async with await AsyncSandbox.create(from_checkpoint=checkpoints[index].id, **connection) as fork:
                expected = [f"f{i:03d}" for i in range(max(0, index - 2), index + 1)]
                assert (await fork.exec.run("ls")).stdout.split() == expected
                assert (await fork.files.read_text(expected[-1])) == f"{index}\n"
        if storage_driver == "overlayfs":
            # Depth stays bounded: old chains were squashed, so far fewer than 100 layers are stacked.
            mounted = (server.home / "sandboxes").glob("*/fs/mounted")
            assert all(len(json.loads(path.read_text())) <= 16 for path in mounted)
        else:
            # Each checkpoint is one snapshot, however many came before it: no chain, nothing to squash.
            assert len(layers_on_disk(server) - before) == 100
        for checkpoint in checkpoints:
            await sandbox.delete_checkpoint(checkpoint.id)


async def test_disk_quota_counts_only_the_sandbox_own_layer(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.exec.run("for i in 1 2 3; do head -c 10000000 /dev/zero > big$i; done")
        checkpoint = await origin.checkpoint()
    fork = await AsyncSandbox.create(from_checkpoint=checkpoint.id, limits={"disk_mb": 20}, **connection)
    try:
        # 30 MB inherited from the checkpoint do not count against the fork's 20 MB: once the watchdog has
        # measured the fork, it is still running and what it counted is the fork's own (nearly nothing).
        info = await until(fork, lambda i: i.disk_used_bytes is not None)
        assert info.state == "running" and info.disk_used_bytes is not None
        assert info.disk_used_bytes < 1024 * 1024
        await fork.exec.run("for i in 1 2 3; do head -c 9000000 /dev/zero > mine$i; done")
        info = await until(fork, lambda i: i.state != "running")
        assert (info.state, info.stop_reason) == ("stopped", "disk_limit")
    finally:
        await fork.kill()
        await fork.close()


async def test_checkpoints_survive_a_server_sigkill(tmp_path: Path, storage_driver: str) -> None:
    with home_for(storage_driver, tmp_path) as home:
        await checkpoints_survive_a_server_sigkill(CoveServer(home), storage_driver)


async def checkpoints_survive_a_server_sigkill(server: CoveServer, storage_driver: str) -> None:
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        sandbox = await AsyncSandbox.create(**connection)
        await sandbox.files.write("before", "1\n")
        first = await sandbox.checkpoint()
        server.kill()
        server.start()
        again = await AsyncSandbox.connect(sandbox.id, **connection)
        assert again.info.storage_driver == storage_driver  # the restarted server kept the driver
        await again.files.write("after", "2\n")
        second = await again.checkpoint()
        async with await AsyncSandbox.create(from_checkpoint=second.id, **connection) as fork:
            assert (await fork.exec.run("cat before after")).stdout == "1\n2\n"
        async with await AsyncSandbox.create(from_checkpoint=first.id, **connection) as fork:
            assert (await fork.exec.run("ls")).stdout == "before\n"
        await again.kill()
        await again.close()
        await sandbox.close()
    finally:
        server.kill_all_sandboxes()
        server.kill()


async def test_kill_frees_subvolumes_made_inside_the_sandbox(
    server: CoveServer, connection: dict[str, str], storage_driver: str
) -> None:
    if storage_driver != "btrfs":
        pytest.skip("only on btrfs can a sandbox make subvolumes of its own")
    sandbox = await AsyncSandbox.create(**connection)
    root = server.home / "sandboxes" / sandbox.id
    made = await sandbox.exec.run("btrfs subvolume create nested && echo x > nested/f && echo y > plain")
    assert made.exit_code == 0, made.stderr
    checkpoint = await sandbox.checkpoint()
    async with await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection) as fork:
        # A snapshot does not descend into subvolumes: the fork sees an empty directory there.
        assert (await fork.exec.run("cat plain; ls -A nested")).stdout == "y\n"
    await sandbox.kill()
    assert not root.exists()  # btrfs refuses to delete a subvolume holding another: the nested one went first
    await sandbox.delete_checkpoint(checkpoint.id)
    await sandbox.close()
