"""What a checkpoint seals after renames, replaced directories and plain edits, through a real server."""

from __future__ import annotations

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
