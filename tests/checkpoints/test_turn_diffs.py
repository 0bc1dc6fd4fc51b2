"""What a turn changed, on each storage driver, in a fork: the state before a turn is the checkpoint's (the
overlay's lower layers, or the btrfs snapshot) for what the fork had not touched, and what was written into the
fork itself before the session (an overlay's upper, or the btrfs subvolume) for the rest."""

from __future__ import annotations

import asyncio

from cove import AsyncSandbox


async def test_a_turn_in_a_fork_compares_with_what_it_started_from(
    connection: dict[str, str], storage_driver: str
) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        await origin.files.write("lib/a.txt", "alpha\n")
        await origin.files.write("lib/b.txt", "beta\n")
        await origin.files.write("gone/x.txt", "x\n")
        checkpoint = await origin.checkpoint()
        async with await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection) as fork:
            assert fork.info.storage_driver == storage_driver
            await fork.files.write("direct.txt", "written in the fork before the session\n")
            prompt = (
                "@bash echo more >> lib/a.txt && rm lib/b.txt && rm -rf gone && mkdir gone && echo back > gone/y.txt"
                " && echo changed > direct.txt"
            )
            session = await fork.agent.start(prompt=prompt)
            done = await asyncio.wait_for(session.done, 60)
            assert done["files_changed"] == [
                {"path": "direct.txt", "change": "modified", "additions": 1, "deletions": 1},
                {"path": "gone/x.txt", "change": "deleted", "additions": 0, "deletions": 1},
                {"path": "gone/y.txt", "change": "added", "additions": 1, "deletions": 0},
                {"path": "lib/a.txt", "change": "modified", "additions": 1, "deletions": 0},
                {"path": "lib/b.txt", "change": "deleted", "additions": 0, "deletions": 1},
            ]
            diff = (await session.diff()).diff
            assert "-written in the fork before the session\n+changed\n" in diff
            assert " alpha\n+more\n" in diff and "-beta\n" in diff and "-x\n" in diff

            await session.send_prompt("@bash echo again >> lib/a.txt")
            second = await asyncio.wait_for(session.done, 60)
            assert second["files_changed"] == [
                {"path": "lib/a.txt", "change": "modified", "additions": 1, "deletions": 0}
            ]
            assert " alpha\n more\n+again\n" in (await session.diff(2)).diff
            await session.kill()
