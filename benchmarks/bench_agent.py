"""Agent turn overhead (issue 3): the same prompt through Cove and through ``claude-agent-sdk`` directly, both
against the model simulator, in the same run; and the time from ``start()`` to the first event."""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from benchmarks._harness import Stats, markdown_table, ms, print_table, running_server, verdict
from cove import AsyncSandbox
from cove.testing import simulator_process

TURNS = 12
STARTS = 5
PROMPT = "@bash echo overhead\n@say measured"


async def _direct_turns(base_url: str) -> Stats:
    """Claude Code through ``ClaudeSDKClient`` on the host, the way an SDK user runs it without Cove."""
    from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage

    home = tempfile.mkdtemp(prefix="cove-bench-direct-")
    env: dict[str, str] = {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "bench",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HOME": home,
        "IS_SANDBOX": "1",  # we run as root here; inside Cove the runner is an unprivileged user
    }
    # The system prompt Cove's runner asks for by default (Claude Code's own): without it the CLI would be sent
    # an empty one and the two sides would not be doing the same work.
    system_prompt: Any = {"type": "preset", "preset": "claude_code", "snapshot": False}
    options = ClaudeAgentOptions(cwd=home, permission_mode="bypassPermissions", env=env, system_prompt=system_prompt)
    samples = []
    async with ClaudeSDKClient(options=options) as client:
        for _ in range(TURNS):
            started = time.perf_counter()
            await client.query(PROMPT)
            async for message in client.receive_response():
                if isinstance(message, ResultMessage):
                    break
            samples.append(time.perf_counter() - started)
    return Stats.of(samples[2:])  # the first turns warm caches on both sides


async def _cove_turns(connection: dict[str, Any]) -> tuple[Stats, Stats]:
    firsts = []
    async with await AsyncSandbox.create(**connection) as sandbox:
        for _ in range(STARTS):
            started = time.perf_counter()
            session = await sandbox.agent.start()
            async for _event in session.events():
                firsts.append(time.perf_counter() - started)
                break
            await session.kill()
        session = await sandbox.agent.start()
        async for event in session.events():
            if event.type == "ready":
                break
        samples = []
        for _ in range(TURNS):
            started = time.perf_counter()
            await session.send_prompt(PROMPT)
            await session.done
            samples.append(time.perf_counter() - started)
        await session.kill()
    return Stats.of(samples[2:]), Stats.of(firsts)


async def _run() -> str:
    with simulator_process() as base_url:
        direct = await _direct_turns(base_url)
        with running_server(ANTHROPIC_API_KEY="bench-upstream-key", ANTHROPIC_BASE_URL=base_url) as server:
            external, _ = await _cove_turns({"url": server.url, "api_key": server.api_key})
    with running_server() as server:
        cove, first_event = await _cove_turns({"url": server.url, "api_key": server.api_key})
    overhead = (cove.p50 - direct.p50) / direct.p50 * 100
    external_overhead = (external.p50 - direct.p50) / direct.p50 * 100
    rows = [
        ["turn via claude-agent-sdk directly", ms(direct.p50, 1), ms(direct.p95, 1), "", ""],
        [
            "turn via Cove (sandbox, proxy, journal, event log)",
            ms(cove.p50, 1),
            ms(cove.p95, 1),
            f"{overhead:+.1f}%",
            verdict(overhead <= 10),
        ],
        [
            "turn via Cove, simulator as an external upstream",
            ms(external.p50, 1),
            ms(external.p95, 1),
            f"{external_overhead:+.1f}%",
            verdict(external_overhead <= 10),
        ],
        ["start() → first event (runner + CLI start)", ms(first_event.p50, 1), ms(first_event.p95, 1), "", ""],
    ]
    headers = ["measure", "p50 ms", "p95 ms", "overhead", "≤ 10%"]
    print_table("Agent turns", headers, rows)
    note = (
        f"\n{TURNS - 2} measured turns of `{PROMPT!r}` (one tool call and a reply) each way, same simulator code; "
        "the direct client runs on the host as root, Cove's runner inside a bwrap sandbox with no network.\n"
    )
    return "## Agent turns (issue 3)\n\n" + markdown_table(headers, rows) + "\n" + note


def main() -> str:
    return asyncio.run(_run())
