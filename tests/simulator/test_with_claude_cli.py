"""The simulator driven by the real Claude Code CLI (bundled with claude-agent-sdk), end to end.

Each test starts a simulator on a free port, points the CLI at it with ``ANTHROPIC_BASE_URL`` and checks what
really happened: files on disk, command output in the reply, what the simulator recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ResultMessage,
    StreamEvent,
    TextBlock,
)

from cove.simulator import BackgroundSimulator, run_in_background

pytestmark = pytest.mark.timeout(120)

TURN_TIMEOUT = 60.0


@pytest.fixture
async def simulator() -> AsyncIterator[BackgroundSimulator]:
    running = await run_in_background("127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def options(simulator: BackgroundSimulator, workdir: Path, **extra: Any) -> ClaudeAgentOptions:
    home = workdir.parent / "home"
    home.mkdir(exist_ok=True)
    env = {
        "ANTHROPIC_BASE_URL": simulator.base_url,
        "ANTHROPIC_API_KEY": "sim-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "IS_SANDBOX": "1",  # we run as root; without it the CLI refuses bypassPermissions
    }
    return ClaudeAgentOptions(cwd=str(workdir), env=env, permission_mode="bypassPermissions", **extra)


async def turn(client: ClaudeSDKClient, prompt: str) -> list[Any]:
    """Send one prompt and collect everything up to and including its ResultMessage."""
    async with asyncio.timeout(TURN_TIMEOUT):
        await client.query(prompt)
        return [message async for message in client.receive_response()]


def result_of(messages: list[Any]) -> ResultMessage:
    results = [message for message in messages if isinstance(message, ResultMessage)]
    assert len(results) == 1, messages
    return results[0]


async def recorded(simulator: BackgroundSimulator) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        entries: list[dict[str, Any]] = (await http.get("/_sim/requests")).json()
        return entries


async def test_write_creates_the_file(simulator: BackgroundSimulator, workdir: Path) -> None:
    async with ClaudeSDKClient(options(simulator, workdir)) as client:
        messages = await turn(client, "Please save this.\n@write out/hello.txt\nhello from the simulator\n@end")
    result = result_of(messages)
    assert not result.is_error
    assert (workdir / "out" / "hello.txt").read_text() == "hello from the simulator\n"
    assert result.result is not None and "File created successfully" in result.result
    entries = await recorded(simulator)
    assert entries[0]["cwd"] == str(workdir)
    assert entries[0]["instruction"] == f"tool_use Write {workdir}/out/hello.txt (step 1/1)"
    assert entries[0]["api_key"] == "sim-key"


async def test_bash_output_reaches_the_final_reply(simulator: BackgroundSimulator, workdir: Path) -> None:
    async with ClaudeSDKClient(options(simulator, workdir)) as client:
        messages = await turn(client, "@bash echo sim-$((6 * 7)) && pwd\n@say ran it")
    result = result_of(messages)
    assert not result.is_error
    assert result.result == f"ran it\nTool result:\nsim-42\n{workdir}"


async def test_read_returns_the_file(simulator: BackgroundSimulator, workdir: Path) -> None:
    (workdir / "notes.txt").write_text("the secret word is pelican\n")
    async with ClaudeSDKClient(options(simulator, workdir)) as client:
        messages = await turn(client, "@read notes.txt")
    result = result_of(messages)
    assert result.result is not None and "the secret word is pelican" in result.result
    assert result.num_turns == 2


async def test_recall_across_turns_and_after_resume(simulator: BackgroundSimulator, workdir: Path) -> None:
    async with ClaudeSDKClient(options(simulator, workdir)) as client:
        first = result_of(await turn(client, "Remember the word pelican."))
        assert first.result == "Simulated reply #1 to: Remember the word pelican."
        second = result_of(await turn(client, "What did I say?\n@recall"))
        assert second.result == "Earlier prompts:\n1. Remember the word pelican."
    async with ClaudeSDKClient(options(simulator, workdir, resume=first.session_id)) as client:
        resumed = result_of(await turn(client, "@recall"))
    assert resumed.result == ("Earlier prompts:\n1. Remember the word pelican.\n2. What did I say?\n   @recall")


async def test_model_is_the_requested_one(simulator: BackgroundSimulator, workdir: Path) -> None:
    async with ClaudeSDKClient(options(simulator, workdir, model="claude-sonnet-4-5")) as client:
        result = result_of(await turn(client, "@model"))
    assert result.result == "Model: claude-sonnet-4-5"
    assert {entry["model"] for entry in await recorded(simulator)} == {"claude-sonnet-4-5"}


async def test_slow_reply_streams_many_deltas_over_time(simulator: BackgroundSimulator, workdir: Path) -> None:
    text = "streaming slowly " * 5
    async with ClaudeSDKClient(options(simulator, workdir, include_partial_messages=True)) as client:
        async with asyncio.timeout(TURN_TIMEOUT):
            await client.query(f"@slow 1 {text}")
            arrivals: list[float] = []
            async for message in client.receive_response():
                if isinstance(message, StreamEvent) and message.event.get("type") == "content_block_delta":
                    arrivals.append(time.monotonic())
                elif isinstance(message, ResultMessage):
                    result = message
    assert result.result == text.strip()
    assert len(arrivals) >= 10
    assert 0.7 <= arrivals[-1] - arrivals[0] <= 3.0


async def test_interrupting_a_slow_reply(simulator: BackgroundSimulator, workdir: Path) -> None:
    async with ClaudeSDKClient(options(simulator, workdir, include_partial_messages=True)) as client:
        async with asyncio.timeout(TURN_TIMEOUT):
            started = time.monotonic()
            await client.query("@slow 30 " + "x" * 300)
            deltas = 0
            async for message in client.receive_response():
                if isinstance(message, StreamEvent) and message.event.get("type") == "content_block_delta":
                    deltas += 1
                    if deltas == 3:
                        await client.interrupt()
                elif isinstance(message, ResultMessage):
                    interrupted = message
        assert interrupted.is_error
        assert time.monotonic() - started < 15
        after = result_of(await turn(client, "@say still here"))
    assert after.result == "still here"


async def test_fail_ends_the_turn_with_an_error(simulator: BackgroundSimulator, workdir: Path) -> None:
    async with ClaudeSDKClient(options(simulator, workdir)) as client:
        messages = await turn(client, "@fail 400 invalid_request_error boom")
        failed = result_of(messages)
        assert failed.is_error
        assert failed.result == "API Error: 400 boom"
        replies = [m for m in messages if isinstance(m, AssistantMessage)]
        assert [block.text for block in replies[-1].content if isinstance(block, TextBlock)] == ["API Error: 400 boom"]
        # The CLI folds the next prompt into the failed turn's user message; it must still count.
        recovered = result_of(await turn(client, "@say recovered"))
    assert recovered.result == "recovered"
    instructions = [entry["instruction"] for entry in await recorded(simulator)]
    assert instructions[-1] == "reply"
    # 400s are retried with fewer beta features before the CLI gives up; all of them failed.
    assert set(instructions[:-1]) == {"fail 400 invalid_request_error"}
