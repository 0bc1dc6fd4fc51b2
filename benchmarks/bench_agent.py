"""Agent turn overhead (issue 3): the same prompt through Cove and through ``claude-agent-sdk`` directly, both
against the model simulator, in the same run; and the time from ``start()`` to the first event.

Cove streams every reply as it is generated (``text_delta`` events, issue 14), so the direct client streams too
(``include_partial_messages``), and the prompt's reply is long enough to arrive in a score of deltas.

The sides take turns, round by round: on a shared 2-core machine the load changes from second to second, and
measuring one side after the other compared one load with another. The rounds go through every order of the
sides in turn, so each side follows each other side equally often: what a turn leaves running when it ends
(Claude Code saving its transcript, say) lands on the next side's turn, and with a merely rotated order the
same side always paid for the same predecessor. Besides each side's p50, the overhead is given as the median
of the per-round ratios, each comparing turns taken within a fraction of a second of each other.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from benchmarks._harness import Stats, markdown_table, ms, print_table, running_server, temp_dir, verdict
from cove import AsyncSandbox
from cove.sdk import AsyncAgentSession
from cove.testing import simulator_process

WARM_UP = 2  # the first rounds warm caches on every side
ROUNDS = WARM_UP + 120  # 20 times each of the 6 orders of 3 sides; at 30 rounds the median still moved ±4%
STARTS = 5
PROMPT = "@bash echo overhead\n@say measured " + "streamed " * 60  # the reply: about 25 simulator deltas
Turn = Callable[[], Awaitable[None]]


@asynccontextmanager
async def _direct(base_url: str) -> AsyncIterator[Turn]:
    """Claude Code through ``ClaudeSDKClient`` on the host, the way an SDK user runs it without Cove."""
    from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage

    with temp_dir("cove-bench-direct-") as home:
        env: dict[str, str] = {
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": "bench",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "HOME": str(home),
            "IS_SANDBOX": "1",  # we run as root here; inside Cove the runner is an unprivileged user
        }
        # The system prompt Cove's runner asks for by default (Claude Code's own): without it the CLI would be
        # sent an empty one and the two sides would not be doing the same work.
        system_prompt: Any = {"type": "preset", "preset": "claude_code", "snapshot": False}
        mode: Any = "bypassPermissions"
        options = ClaudeAgentOptions(
            cwd=home, permission_mode=mode, env=env, system_prompt=system_prompt, include_partial_messages=True
        )
        async with ClaudeSDKClient(options=options) as client:

            async def turn() -> None:
                await client.query(PROMPT)
                async for message in client.receive_response():
                    if isinstance(message, ResultMessage):
                        break

            yield turn


async def _ready_session(sandbox: AsyncSandbox) -> AsyncAgentSession:
    session = await sandbox.agent.start()
    async for event in session.events():
        if event.type == "ready":
            break
    return session


@asynccontextmanager
async def _cove(connection: dict[str, Any]) -> AsyncIterator[Turn]:
    async with await AsyncSandbox.create(**connection) as sandbox:
        session = await _ready_session(sandbox)

        async def turn() -> None:
            await session.send_prompt(PROMPT)
            await session.done

        yield turn
        await session.kill()


async def _first_events(connection: dict[str, Any]) -> Stats:
    samples = []
    async with await AsyncSandbox.create(**connection) as sandbox:
        for _ in range(STARTS):
            started = time.perf_counter()
            session = await sandbox.agent.start()
            async for _event in session.events():
                samples.append(time.perf_counter() - started)
                break
            await session.kill()
    return Stats.of(samples)


async def _rounds(sides: dict[str, Turn]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in sides}
    orders = list(itertools.permutations(sides))
    for round_ in range(ROUNDS):
        for name in orders[(round_ - WARM_UP) % len(orders)]:
            started = time.perf_counter()
            await sides[name]()
            samples[name].append(time.perf_counter() - started)
    return {name: values[WARM_UP:] for name, values in samples.items()}


def _paired(side: list[float], direct: list[float]) -> float:
    """Median over rounds of side/direct − 1, in percent."""
    return statistics.median(s / d - 1 for s, d in zip(side, direct, strict=True)) * 100


async def _run() -> str:
    with (
        simulator_process() as base_url,
        running_server() as server,
        running_server(ANTHROPIC_API_KEY="bench-upstream-key", ANTHROPIC_BASE_URL=base_url) as external_server,
    ):
        connection = {"url": server.url, "api_key": server.api_key}
        external_connection = {"url": external_server.url, "api_key": external_server.api_key}
        async with AsyncExitStack() as stack:
            sides = {
                "direct": await stack.enter_async_context(_direct(base_url)),
                "cove": await stack.enter_async_context(_cove(connection)),
                "external": await stack.enter_async_context(_cove(external_connection)),
            }
            samples = await _rounds(sides)
        first_event = await _first_events(connection)
    stats = {name: Stats.of(values) for name, values in samples.items()}
    direct = stats["direct"]
    rows = [
        ["turn via claude-agent-sdk directly, partial messages on", ms(direct.p50, 1), ms(direct.p95, 1), "", "", ""]
    ]
    for name, label in (
        ("cove", "turn via Cove (sandbox, proxy, journal, event log, text deltas)"),
        ("external", "turn via Cove, simulator as an external upstream"),
    ):
        side = stats[name]
        of_p50s = (side.p50 - direct.p50) / direct.p50 * 100
        paired = _paired(samples[name], samples["direct"])
        row = [label, ms(side.p50, 1), ms(side.p95, 1), f"{of_p50s:+.1f}%", f"{paired:+.1f}%", verdict(paired <= 10)]
        rows.append(row)
    rows.append(["start() → first event (runner + CLI start)", ms(first_event.p50, 1), ms(first_event.p95, 1)])
    rows[-1] += ["", "", ""]
    headers = ["measure", "p50 ms", "p95 ms", "overhead of p50s", "overhead, paired (median)", "≤ 10%"]
    print_table("Agent turns", headers, rows)
    note = (
        f"\n{ROUNDS - WARM_UP} measured rounds (after {WARM_UP} warm-up rounds) of `{PROMPT[:40]!r}…` (one tool call "
        "and a reply of about 500 characters, streamed in deltas: Cove journals them as text_delta events, the direct "
        "client takes them as partial messages); in each round every side takes one turn, the rounds going "
        "through every order of the sides in turn (each side follows each other side equally often). Same "
        "simulator code on every side; the direct client runs on the host as root, Cove's runner inside a bwrap "
        "sandbox with no network. The target is judged on the paired overhead: the median over rounds of "
        "(Cove turn / direct turn − 1).\n"
    )
    return "## Agent turns (issue 3)\n\n" + markdown_table(headers, rows) + "\n" + note


def main() -> str:
    return asyncio.run(_run())
