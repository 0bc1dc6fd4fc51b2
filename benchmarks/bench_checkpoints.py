"""Checkpoint and fork benchmarks (issue 4), side by side with ``cp -a`` of the same tree in the same run.

A sandbox holds 200 MB in 20,000 files (200 directories × 100 files × 10 kB) under /workspace. Measured:

- **checkpoint after no change** and **after 50 file edits** (the edits are made before the clock starts), on
  the origin — whose upper holds all 20,000 files, so every checkpoint scans them — and on a fork of it, whose
  upper holds only what the fork changed (the usual case: set up, checkpoint, work in forks);
- **one fork**: ``AsyncSandbox.create(from_checkpoint=...)`` through the SDK, next to a plain ``create()`` (both
  claim a warm-pool sandbox), the same with the pool drained (a cold start), and the storage part alone
  (``OverlayStorage.mount`` of the chain, in process);
- **ten parallel forks**: wall time of ten concurrent ``create(from_checkpoint=...)``;
- **``cp -a``** of the tree on the host, the copy a naive snapshot would make.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks._harness import BenchServer, Stats, markdown_table, ms, print_table, running_server, temp_dir, verdict
from cove import AsyncSandbox
from cove.runtime.layers import LayerStore
from cove.runtime.storage import OverlayStorage

RUNS = 10
CP_RUNS = 3
PARALLEL = 10
PARALLEL_RUNS = 3
EDITS = 50
FORK_TARGET_MS = 50.0
CHECKPOINT_TARGET_MS = 100.0
SPEEDUP_TARGET = 20.0
STORAGE_UID = 3_980_000

POPULATE = """
import os
for d in range(200):
    os.makedirs(f"tree/d{d:03d}", exist_ok=True)
    for f in range(100):
        with open(f"tree/d{d:03d}/f{f:03d}", "wb") as out:
            out.write(os.urandom(10_000))
"""
EDIT = """
import random, sys
random.seed(int(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    d, f = random.randrange(200), random.randrange(100)
    with open(f"tree/d{d:03d}/f{f:03d}", "ab") as out:
        out.write(b"edited\\n")
"""


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def checkpoint_series(sandbox: AsyncSandbox, edits: bool) -> Stats:
    samples = []
    for run in range(RUNS):
        if edits:
            await sandbox.exec.run(["python3", "edit.py", str(run), str(EDITS)])
        samples.append(await timed(lambda: sandbox.checkpoint()))
    return Stats.of(samples)


async def fork_series(connection: dict[str, str], checkpoint_id: str | None, server: BenchServer) -> Stats:
    """Creates one after the other, each after waiting for the warm pool to be full (none when it is drained),
    so that each measures a claim (a fork's too: its files are attached to the claimed sandbox)."""
    from benchmarks.bench_sandbox import wait_for_pool

    samples = []
    claims = 0
    for _ in range(RUNS):
        ready = await wait_for_pool(server)
        started = time.perf_counter()
        sandbox = await AsyncSandbox.create(from_checkpoint=checkpoint_id, **connection)
        samples.append(time.perf_counter() - started)
        claims += sandbox.id in ready
        await sandbox.kill()
        await sandbox.close()
    print(f"{'fork' if checkpoint_id else 'create'}: {claims} of {RUNS} claimed a pooled sandbox", flush=True)
    return Stats.of(samples)


async def drain_pool(server: BenchServer) -> None:
    import httpx

    headers = {"authorization": f"Bearer {server.api_key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        (await client.delete("/v1/pool")).raise_for_status()


async def parallel_forks(connection: dict[str, str], checkpoint_id: str) -> Stats:
    samples = []
    for _ in range(PARALLEL_RUNS):
        started = time.perf_counter()
        forks = await asyncio.gather(
            *(AsyncSandbox.create(from_checkpoint=checkpoint_id, **connection) for _ in range(PARALLEL))
        )
        samples.append(time.perf_counter() - started)
        await asyncio.gather(*(f.kill() for f in forks))
        await asyncio.gather(*(f.close() for f in forks))
    return Stats.of(samples)


def storage_mount_series(server: BenchServer, chain: list[str]) -> Stats:
    """The fork's storage work alone: the idmapped view and the overlay over the chain, in this process."""
    samples = []
    with temp_dir("cove-bench-mount-") as scratch:
        storage = OverlayStorage(LayerStore(server.home / "layers"), scratch / "views", scratch / "scratch")
        for run in range(RUNS):
            root = scratch / f"sbx_bench{run}"
            started = time.perf_counter()
            storage.mount(root, chain, STORAGE_UID)
            samples.append(time.perf_counter() - started)
            storage.release(root)
    return Stats.of(samples)


def cp_series(source: Path) -> Stats:
    samples = []
    with temp_dir("cove-bench-cp-") as scratch:
        for run in range(CP_RUNS):
            os.sync()  # the same quiet disk the checkpoints get
            started = time.perf_counter()
            subprocess.run(["cp", "-a", str(source), str(scratch / f"copy{run}")], check=True)
            samples.append(time.perf_counter() - started)
    return Stats.of(samples)


async def measure(server: BenchServer) -> dict[str, Stats | float]:
    connection = {"url": server.url, "api_key": server.api_key}
    results: dict[str, Stats | float] = {}
    origin = await AsyncSandbox.create(**connection)
    root = server.home / "sandboxes" / origin.id
    await origin.files.write("populate.py", POPULATE)
    await origin.files.write("edit.py", EDIT)
    results["populate"] = await timed(lambda: origin.exec.run(["python3", "populate.py"], timeout=600))
    files = int((await origin.exec.run("find tree -type f | wc -l")).stdout)
    size = int((await origin.exec.run("du -sb tree | cut -f1")).stdout)
    print(f"tree: {files} files, {size / 1e6:.1f} MB in {results['populate']:.1f} s", flush=True)
    results["cp"] = cp_series(root / "merged" / "workspace" / "tree")
    started = time.perf_counter()
    first = await origin.checkpoint("populated")
    results["first"] = time.perf_counter() - started
    # The set-up left about 1 GB of dirty pages (the tree, the copies, the first layer) that this disk takes
    # seconds to write back; measured inside that, each checkpoint's few file creations wait on the journal.
    await asyncio.to_thread(os.sync)
    results["origin_nochange"] = await checkpoint_series(origin, edits=False)
    results["origin_edits"] = await checkpoint_series(origin, edits=True)
    fork = await AsyncSandbox.create(from_checkpoint=first.id, **connection)
    await fork.files.write("edit.py", EDIT)
    results["fork_nochange"] = await checkpoint_series(fork, edits=False)
    results["fork_edits"] = await checkpoint_series(fork, edits=True)
    chain = json.loads((server.home / "sandboxes" / fork.id / "fs" / "head").read_text())
    await fork.kill()
    await fork.close()
    results["create"] = await fork_series(connection, None, server)
    results["fork"] = await fork_series(connection, first.id, server)
    results["mount"] = await asyncio.to_thread(storage_mount_series, server, chain)
    results["parallel"] = await parallel_forks(connection, first.id)
    await drain_pool(server)
    results["fork_cold"] = await fork_series(connection, first.id, server)
    results["first_checkpoint_bytes"] = float(first.size_bytes)
    await origin.kill()
    await origin.close()
    return results


def report(results: dict[str, Stats | float]) -> str:
    stats = {k: v for k, v in results.items() if isinstance(v, Stats)}
    cp = stats["cp"].p50
    rows = [
        ("`cp -a` of the tree (200 MB, 20,000 files), host", stats["cp"]),
        ("checkpoint, origin, no change", stats["origin_nochange"]),
        (f"checkpoint, origin, after {EDITS} file edits", stats["origin_edits"]),
        ("checkpoint, fork, no change", stats["fork_nochange"]),
        (f"checkpoint, fork, after {EDITS} file edits", stats["fork_edits"]),
        ("fork: storage only (idmapped view + overlay mount)", stats["mount"]),
        ("fork: `AsyncSandbox.create(from_checkpoint=…)` (SDK, a warm-pool claim)", stats["fork"]),
        ("fork with the warm pool empty (a cold start + the storage)", stats["fork_cold"]),
        ("plain `AsyncSandbox.create()` (SDK, a warm-pool claim), for comparison", stats["create"]),
        (f"{PARALLEL} parallel forks, wall time", stats["parallel"]),
    ]
    table = [[name, s.n, ms(s.p50), ms(s.p95), ms(s.min), f"{cp / s.p50:.0f}x"] for name, s in rows]
    headers = ["measurement", "n", "p50 ms", "p95 ms", "min ms", "vs cp -a"]
    print_table("Checkpoints and forks", headers, table)
    worst_checkpoint = max(stats["origin_edits"].p50, stats["fork_edits"].p50)
    targets = [
        ("fork < 50 ms: storage (mount)", stats["mount"].p50, stats["mount"].p50 < FORK_TARGET_MS),
        ("fork < 50 ms: end to end (SDK create)", stats["fork"].p50, stats["fork"].p50 < FORK_TARGET_MS),
        (
            f"checkpoint after {EDITS} edits < 100 ms (worst of origin, fork)",
            worst_checkpoint,
            worst_checkpoint < CHECKPOINT_TARGET_MS,
        ),
        ("fork ≥ 20x faster than cp -a (SDK create)", stats["fork"].p50, cp / stats["fork"].p50 >= SPEEDUP_TARGET),
        ("checkpoint ≥ 20x faster than cp -a", worst_checkpoint, cp / worst_checkpoint >= SPEEDUP_TARGET),
    ]
    target_rows = [[name, f"{ms(value)} ms", verdict(ok)] for name, value, ok in targets]
    print_table("Targets", ["target", "measured p50", "result"], target_rows)
    first_mb = float(results["first_checkpoint_bytes"]) / 1e6
    return "\n".join(
        [
            "## Checkpoints and forks (`bench_checkpoints`)",
            "",
            f"A sandbox with 200 MB in 20,000 files (populated in {float(results['populate']):.1f} s); {RUNS} runs "
            f"of each checkpoint and fork, {CP_RUNS} of `cp -a`, {PARALLEL_RUNS} rounds of {PARALLEL} parallel "
            f"forks. The origin's first checkpoint sealed {first_mb:.0f} MB (its whole upper) in "
            f"{float(results['first']):.1f} s. The origin's "
            "upper holds all 20,000 files, so each of its checkpoints scans them (ctime + manifest); a fork's "
            "upper holds only its own changes.",
            "",
            "### Targets",
            "",
            markdown_table(["target", "measured p50", "result"], target_rows),
            "",
            "### Measurements",
            "",
            markdown_table(headers, table),
            "",
            "A fork claims a warm-pool sandbox when one is ready: the pooled sandbox's files are swapped for an "
            "overlay on the checkpoint's chain and bound into it while it is idle (mount propagation, see "
            "`SandboxPaths.slots`), so a fork costs a claim plus the storage mount. With the pool empty (more "
            f"than `COVE_POOL_SIZE` forks at once, as in the {PARALLEL} parallel ones) a fork is a cold sandbox "
            "start (see `bench_sandbox`) plus the storage mount.",
        ]
    )


def main() -> str:
    with running_server() as server:
        print(f"server {server.url} (home {server.home})", flush=True)
        results = asyncio.run(measure(server))
    return report(results)


if __name__ == "__main__":
    print(main())
