"""Resume across sandboxes: the conversation continues in a fork of a checkpoint taken after the turn, and in a
fork of a checkpoint from before it (Cove puts its stored copy of the transcript in place)."""

from __future__ import annotations

import asyncio

from cove import AsyncSandbox
from tests.agent.conftest import texts, validate_events


async def test_resume_in_forks_of_checkpoints_before_and_after_the_turn(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        before = await origin.checkpoint("before the conversation")
        session = await origin.agent.start(prompt="the code word is ocelot")
        claude_id = (await asyncio.wait_for(session.done, 60))["claude_session_id"]
        await session.kill()
        after = await origin.checkpoint("after the first turn")

        async with await AsyncSandbox.create(from_checkpoint=after.id, **connection) as fork:
            transcripts = await fork.exec.run(f"ls /home/user/.claude/projects/*/{claude_id}.jsonl")
            assert transcripts.exit_code == 0  # the transcript travelled with the checkpoint
            resumed = await fork.agent.start(prompt="@recall", resume=claude_id)
            done = await asyncio.wait_for(resumed.done, 60)
            assert done["claude_session_id"] == claude_id
            assert "ocelot" in texts(validate_events(await resumed.collect_events()))
            await resumed.kill()

        async with await AsyncSandbox.create(from_checkpoint=before.id, **connection) as older:
            missing = await older.exec.run(f"ls /home/user/.claude/projects/*/{claude_id}.jsonl")
            assert missing.exit_code != 0  # this fork predates the conversation
            resumed = await older.agent.start(prompt="@recall", resume=claude_id)
            await asyncio.wait_for(resumed.done, 60)
            assert "ocelot" in texts(await resumed.collect_events())
            await resumed.kill()


async def test_parallel_forks_branch_the_same_conversation(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        session = await origin.agent.start(prompt="we are planning a trip to Lisbon")
        claude_id = (await asyncio.wait_for(session.done, 60))["claude_session_id"]
        await session.kill()
        checkpoint = await origin.checkpoint()

        async def try_in_fork(idea: str) -> str:
            async with await AsyncSandbox.create(from_checkpoint=checkpoint.id, **connection) as fork:
                branch = await fork.agent.start(prompt=f"{idea}\n@recall", resume=claude_id)
                await asyncio.wait_for(branch.done, 60)
                reply = texts(await branch.collect_events())
                await branch.kill()
                return reply

        replies = await asyncio.gather(try_in_fork("idea: by train"), try_in_fork("idea: by boat"))
        assert all("Lisbon" in reply for reply in replies)


async def test_restoring_a_checkpoint_ends_the_sandbox_sessions(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as sandbox:
        checkpoint = await sandbox.checkpoint()
        session = await sandbox.agent.start(prompt="@say hello")
        await asyncio.wait_for(session.done, 60)
        await sandbox.restore(checkpoint.id)
        exit_event = await asyncio.wait_for(session.wait_exit(), 30)
        assert exit_event.type == "exit"
        info = await session.refresh()
        assert info.status == "exited"
        validate_events(await session.collect_events())
