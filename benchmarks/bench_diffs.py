"""What a turn changed (issue 14): ``files_changed`` of a turn that touched nothing, in a 20,000-file workspace —
goal < 5 ms.

A sandbox holds 200 MB in 20,000 files (200 directories × 100 files × 10 kB, ``bench_checkpoints``'s tree) under
/workspace, written through its own processes (so all of it sits in the overlay's upper: the worst case for the
first seal, which copies it). Measured, with the server's own code on that real sandbox (``TurnStore`` over its
workspace, as ``TurnService.completed`` runs it in a worker thread: the end seal, the turn's changes, their
summary):

- **files_changed, nothing changed**: a seal, the changes since the one before, their summary;
- **files_changed, one file edited** (the edit made before the clock starts), and **a seal that walks** the
  workspace (what a directory moved, an inotify overflow or a restart costs);
- **the first seal** of the sandbox: the base, which copies what the upper holds (once per sandbox).

And end to end, through the API with the real Claude Code CLI on the model simulator: a turn that touches
nothing, in that sandbox and in an empty one (so the difference is what 20,000 files cost a turn).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchmarks._harness import Stats, markdown_table, ms, print_table, running_server, temp_dir, verdict
from benchmarks.bench_checkpoints import POPULATE
from cove import AsyncSandbox
from cove.runtime.layers import LayerStore
from cove.runtime.storage import open_storage
from cove.runtime.turn_diff import summarize
from cove.runtime.turn_store import TurnStore

RUNS = 200
TURNS = 20
GOAL_MS = 5.0


def _files_changed(store: TurnStore, start: int) -> int:
    """What TurnService.completed does in its worker thread: seal, changes since ``start``, their summary."""
    end = store.seal()
    summarize(store.changes(start, end), store.content)
    return end


async def _in_process(server_home: Path, sandbox: AsyncSandbox, scratch: Path) -> dict[str, Stats]:
    root = server_home / "sandboxes" / sandbox.id
    uid = int((await sandbox.exec.run("id -u")).stdout)
    storage = open_storage(
        LayerStore(server_home / "layers"), server_home / "views", scratch, server_home / "sandboxes"
    )
    store = TurnStore(scratch / "turns", root / "merged" / "workspace", uid, storage.workspace_base(root, uid, True))
    started = time.perf_counter()
    store.begin()
    first = time.perf_counter() - started
    seal = store.seal()
    quiet = []
    for _ in range(RUNS):
        started = time.perf_counter()
        seal = _files_changed(store, seal)
        quiet.append(time.perf_counter() - started)
    edited = []
    for run in range(TURNS):
        await sandbox.exec.run(f"echo edit {run} >> tree/d{run % 200:03d}/f000")
        started = time.perf_counter()
        seal = _files_changed(store, seal)
        edited.append(time.perf_counter() - started)
    walked = []
    for run in range(TURNS // 4):
        await sandbox.exec.run(f"mv tree/d199 tree/moved{run} && mv tree/moved{run} tree/d199")  # unfollowable
        started = time.perf_counter()
        seal = _files_changed(store, seal)
        walked.append(time.perf_counter() - started)
    store.close()
    return {
        "first": Stats.of([first]),
        "quiet": Stats.of(quiet),
        "edited": Stats.of(edited),
        "walked": Stats.of(walked),
    }


async def _turns(sandbox: AsyncSandbox) -> Stats:
    session = await sandbox.agent.start(prompt="@say warm up")
    await asyncio.wait_for(session.done, 120)
    samples = []
    for run in range(TURNS):
        started = time.perf_counter()
        await session.send_prompt(f"@say turn {run}")
        done = await asyncio.wait_for(session.done, 60)
        samples.append(time.perf_counter() - started)
        assert done["files_changed"] == [], done
    await session.kill()
    return Stats.of(samples)


async def _run() -> str:
    with running_server() as server, temp_dir("cove-bench-diffs-", server.home) as scratch:
        connection = {"url": server.url, "api_key": server.api_key}
        async with await AsyncSandbox.create(**connection) as sandbox, await AsyncSandbox.create(**connection) as empty:
            await sandbox.files.write("populate.py", POPULATE)
            await sandbox.exec.run("python3 populate.py", timeout=600)
            assert (await sandbox.exec.run("find tree -type f | wc -l")).stdout.strip() == "20000"
            measured = await _in_process(server.home, sandbox, scratch)
            first_session = time.perf_counter()
            full = await _turns(sandbox)
            first_session = time.perf_counter() - first_session
            bare = await _turns(empty)
    quiet, edited, walked, first = measured["quiet"], measured["edited"], measured["walked"], measured["first"]
    rows = [
        [
            "files_changed, nothing changed (seal + changes + summary)",
            quiet.n,
            ms(quiet.p50),
            ms(quiet.p95),
            ms(quiet.max),
        ],
        ["files_changed, one file edited", edited.n, ms(edited.p50), ms(edited.p95), ms(edited.max)],
        [
            "a seal that walks the 20,000 files (a directory moved)",
            walked.n,
            ms(walked.p50),
            ms(walked.p95),
            ms(walked.max),
        ],
        ["the first seal: the base, copying the upper's 20,000 files", first.n, ms(first.p50), "—", "—"],
        [
            "end to end: a turn that touched nothing, 20,000-file workspace",
            full.n,
            ms(full.p50),
            ms(full.p95),
            ms(full.max),
        ],
        ["end to end: a turn that touched nothing, empty workspace", bare.n, ms(bare.p50), ms(bare.p95), ms(bare.max)],
    ]
    headers = ["measurement", "n", "p50 ms", "p95 ms", "max ms"]
    print_table("What a turn changed", headers, rows)
    targets = [
        [
            "files_changed of a no-change turn, 20,000 files, p50 < 5 ms",
            f"{ms(quiet.p50)} ms",
            verdict(quiet.p50 < GOAL_MS),
        ],
    ]
    difference = full.p50 - bare.p50
    return "\n\n".join(
        [
            "## What a turn changed — files_changed in a 20,000-file workspace (`bench_diffs`)",
            "A sandbox with 200 MB in 20,000 files under /workspace, all in its overlay's upper (written by its own "
            "processes). In process: the server's `TurnStore` over that sandbox's real workspace, doing what "
            f"`TurnService.completed` does for a turn ({RUNS} no-change runs, {TURNS} after one edit each, "
            f"{TURNS // 4} that walk). End to end: {TURNS} turns of `@say` through the API with the real Claude Code "
            "CLI on the simulator, in that sandbox and in an empty one; the first session in the big sandbox "
            f"(which pays the first seal, concurrent with the CLI's start-up) took {first_session:.1f} s for its "
            f"{TURNS + 1} turns.",
            "### Targets\n\n" + markdown_table(["target", "measured", "result"], targets),
            "### Measurements\n\n" + markdown_table(headers, rows),
            f"A no-change turn in the 20,000-file workspace against one in an empty workspace (p50): "
            f"{difference:+.2f} ms; whole turns of the CLI vary by tens of ms from run to run on this shared machine.",
        ]
    )


def main() -> str:
    return asyncio.run(_run())
