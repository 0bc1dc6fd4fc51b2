"""What a checkpoint seals after renames, replaced directories and plain edits, through a real server."""

from __future__ import annotations

import asyncio

from cove import AsyncSandbox


async def test_renamed_and_replaced_directories_are_sealed_whole(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.exec.run("mkdir -p old/sub gone && echo a > old/sub/a && echo b > gone/b && touch -d @1000 old/t")
        await origin.checkpoint()
        # A rename gives the subtree new paths without changing the ctimes under it; a directory removed and made
        # again hides what older layers hold under it.
        await origin.exec.run("mv old new && rm -r gone && mkdir gone && echo c > gone/c")
        second = await origin.checkpoint()
        async with await AsyncSandbox.create(from_checkpoint=second.id, **connection) as fork:
            found = await fork.exec.run("find . -path ./.cache -prune -o -print | sort; stat -c %Y new/t")
            *tree, mtime = found.stdout.split()
            assert tree == [".", "./gone", "./gone/c", "./new", "./new/sub", "./new/sub/a", "./new/t"]
            assert mtime == "1000"
            assert (await fork.exec.run("cat new/sub/a gone/c")).stdout == "a\nc\n"


async def test_a_checkpoint_after_edits_holds_only_the_edits(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.exec.run("mkdir d && for i in $(seq 1 200); do echo $i > d/f$i; done")
        first = await origin.checkpoint()
        await origin.exec.run("echo edited >> d/f7 && chmod 600 d/f9")
        second = await origin.checkpoint()
        assert 0 < second.size_bytes < first.size_bytes
        async with await AsyncSandbox.create(from_checkpoint=second.id, **connection) as fork:
            assert (await fork.exec.run("cat d/f7 d/f8; stat -c '%a %U' d/f9")).stdout == "7\nedited\n8\n600 user\n"
            assert (await fork.exec.run("ls d | wc -l")).stdout == "200\n"


MAPPER = """
import mmap, sys
with open("d/mapped", "r+b") as f:
    mapping = mmap.mmap(f.fileno(), 0)  # the file is closed from here on: only the mapping writes to it
print("mapped", flush=True)
for line in sys.stdin:
    mapping[0:1] = line.strip().encode()
    mapping.flush()
    print("wrote", flush=True)
mapping.close()
"""


async def test_edits_between_checkpoints_are_sealed_however_they_are_made(connection: dict[str, str]) -> None:
    """After the first checkpoint, in-place edits are found without a scan of the whole upper (``changes``):
    writes, appends, truncation, chmod, timestamps, and writes through a memory mapping, which inotify does not
    report, both while the mapping outlives a checkpoint and after it is gone. A change of shape falls back."""
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.exec.run("mkdir d && for i in 1 2 3 4 5; do echo $i > d/f$i; done && echo A > d/mapped")
        lines: asyncio.Queue[str] = asyncio.Queue()
        pending = bytearray()

        def on_stdout(chunk: bytes) -> None:
            pending.extend(chunk)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                lines.put_nowait(line.decode())

        mapper = await origin.exec.start(["python3", "-c", MAPPER], on_stdout=on_stdout)
        assert await asyncio.wait_for(lines.get(), 30) == "mapped"
        await origin.checkpoint()

        await mapper.send_stdin("B\n")
        assert await asyncio.wait_for(lines.get(), 30) == "wrote"
        await origin.exec.run("echo more >> d/f1 && chmod 600 d/f2 && truncate -s 0 d/f3 && touch -d @5 d/f4")
        second = await origin.checkpoint()

        await mapper.send_stdin("C\n")
        assert await asyncio.wait_for(lines.get(), 30) == "wrote"
        await mapper.close_stdin()
        assert (await mapper.wait()).exit_code == 0  # unmapped before the seal: no mapping left to see
        third = await origin.checkpoint()

        await origin.exec.run("rm d/f5 && echo new > d/new")
        fourth = await origin.checkpoint()

        show = "head -c1 d/mapped; echo; cat d/f1; stat -c '%a %s' d/f2 d/f3; stat -c %Y d/f4; ls d | tr '\\n' ' '"
        expected = {
            second.id: "B\n1\nmore\n600 2\n644 0\n5\nf1 f2 f3 f4 f5 mapped ",
            third.id: "C\n1\nmore\n600 2\n644 0\n5\nf1 f2 f3 f4 f5 mapped ",
            fourth.id: "C\n1\nmore\n600 2\n644 0\n5\nf1 f2 f3 f4 mapped new ",
        }
        for checkpoint_id, seen in expected.items():
            async with await AsyncSandbox.create(from_checkpoint=checkpoint_id, **connection) as fork:
                assert (await fork.exec.run(show)).stdout == seen, checkpoint_id
