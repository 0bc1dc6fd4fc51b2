"""Checkpoint and fork benchmarks (issue 4), side by side with ``cp -a`` of the same tree in the same run.

A sandbox holds 200 MB in 20,000 files (200 directories × 100 files × 10 kB) under /workspace. Measured:

- **checkpoint after no change** and **after 50 file edits** (the edits are made before the clock starts), on
  the origin — whose upper holds all 20,000 files, so every checkpoint scans them — and on a fork of it, whose
  upper holds only what the fork changed (the usual case: set up, checkpoint, work in forks);
- **one fork**: ``AsyncSandbox.create(from_checkpoint=...)`` through the SDK, next to a plain ``create()`` (both
  claim a warm-pool sandbox), the same with the pool drained (a cold start), and the storage part alone (the
  driver's ``mount`` of the chain, in process);
- **ten parallel forks**: wall time of ten concurrent ``create(from_checkpoint=...)``;
- **``cp -a``** of the tree on the host, the copy a naive snapshot would make.

All of it twice in the same run, once per storage driver: overlayfs (``COVE_HOME`` on the work disk) and btrfs
(``COVE_HOME`` on a loopback btrfs made for the run). ``cp -a`` copies from where the sandbox's files are to the
work disk, so it is measured in each run too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks._harness import BenchServer, Stats, markdown_table, ms, print_table, running_server, temp_dir, verdict
from cove import AsyncSandbox
from cove.runtime.layers import LayerStore
from cove.runtime.storage import open_storage
from cove.testing import loopback_btrfs

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
    """The fork's storage work alone, in this process, with the driver the server chose: the idmapped view and
    the overlay over the chain, or the writable snapshot and its idmapped bind. Next to the server's home, so on
    the same filesystem (a btrfs snapshot cannot leave its filesystem)."""
    samples = []
    with temp_dir("cove-bench-mount-", server.home) as scratch:
        (scratch / "sandboxes").mkdir()
        layers = LayerStore(server.home / "layers")
        storage = open_storage(layers, scratch / "views", scratch / "scratch", scratch / "sandboxes")
        for run in range(RUNS):
            root = scratch / "sandboxes" / f"sbx_bench{run}"
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


def latest_chain(server: BenchServer, sandbox_id: str) -> list[str]:
    """The layers of the sandbox's latest checkpoint, from the server's store (the API does not show them)."""
    with contextlib.closing(sqlite3.connect(server.home / "cove.db")) as db:
        query = "SELECT layers FROM checkpoints WHERE sandbox_id = ? ORDER BY created_at DESC LIMIT 1"
        (layers,) = db.execute(query, (sandbox_id,)).fetchone()
    chain: list[str] = json.loads(layers)
    return chain


async def measure(server: BenchServer) -> dict[str, Stats | float]:
    connection = {"url": server.url, "api_key": server.api_key}
    results: dict[str, Stats | float] = {}
    origin = await AsyncSandbox.create(**connection)
    print(f"storage driver: {origin.info.storage_driver}", flush=True)
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
    chain = latest_chain(server, fork.id)
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


MEASUREMENTS = [
    ("cp", "`cp -a` of the tree (200 MB, 20,000 files), host"),
    ("origin_nochange", "checkpoint, origin, no change"),
    ("origin_edits", f"checkpoint, origin, after {EDITS} file edits"),
    ("fork_nochange", "checkpoint, fork, no change"),
    ("fork_edits", f"checkpoint, fork, after {EDITS} file edits"),
    ("mount", "fork: storage only (the driver's mount of the chain)"),
    ("fork", "fork: `AsyncSandbox.create(from_checkpoint=…)` (SDK, a warm-pool claim)"),
    ("fork_cold", "fork with the warm pool empty (a cold start + the storage)"),
    ("create", "plain `AsyncSandbox.create()` (SDK, a warm-pool claim), for comparison"),
    ("parallel", f"{PARALLEL} parallel forks, wall time"),
]


def targets(stats: dict[str, Stats], cp: float) -> list[tuple[str, float, bool]]:
    worst_checkpoint = max(stats["origin_edits"].p50, stats["fork_edits"].p50)
    return [
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


def report(by_driver: dict[str, dict[str, Stats | float]]) -> str:
    drivers = list(by_driver)
    stats = {d: {k: v for k, v in r.items() if isinstance(v, Stats)} for d, r in by_driver.items()}
    # One baseline for every ratio: the faster of the runs' copies (reading from a loopback btrfs is slower, and
    # comparing each driver with its own copy would flatter the slower one).
    cp = min(stats[driver]["cp"].p50 for driver in drivers)
    table = []
    for key, name in MEASUREMENTS:
        for driver in drivers:
            row = stats[driver][key]
            table.append([name, driver, row.n, ms(row.p50), ms(row.p95), ms(row.min), f"{cp / row.p50:.0f}x"])
    headers = ["measurement", "driver", "n", "p50 ms", "p95 ms", "min ms", "vs cp -a"]
    print_table("Checkpoints and forks", headers, table)
    target_rows = [
        [name, driver, f"{ms(value)} ms", verdict(ok)]
        for driver in drivers
        for name, value, ok in targets(stats[driver], cp)
    ]
    print_table("Targets", ["target", "driver", "measured p50", "result"], target_rows)
    firsts = "; ".join(
        f"{driver}: {float(r['first_checkpoint_bytes']) / 1e6:.0f} MB in {float(r['first']) * 1000:.0f} ms "
        f"(populated in {float(r['populate']):.1f} s)"
        for driver, r in by_driver.items()
    )
    return "\n".join(
        [
            "## Checkpoints and forks (`bench_checkpoints`)",
            "",
            f"A sandbox with 200 MB in 20,000 files, once per storage driver (overlayfs with `COVE_HOME` on the work "
            f"disk, btrfs with `COVE_HOME` on a loopback btrfs); {RUNS} runs of each checkpoint and fork, {CP_RUNS} "
            f"of `cp -a` (from the sandbox's files to the work disk; every ratio is to the faster run's copy), "
            f"{PARALLEL_RUNS} rounds of {PARALLEL} parallel "
            f"forks. The origin's first checkpoint sealed — {firsts}. With overlayfs the origin's upper holds all "
            "20,000 files: its first checkpoint scans them (ctime + manifest), later ones look only at the entries "
            "inotify reported (`runtime.changes`) while nothing was made, removed or renamed; a fork's upper holds "
            "only its own changes. With btrfs every checkpoint is a read-only snapshot and every fork a writable "
            "one, whatever the size or the change.",
            "",
            "### Targets",
            "",
            markdown_table(["target", "driver", "measured p50", "result"], target_rows),
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
    by_driver: dict[str, dict[str, Stats | float]] = {}
    with running_server() as server:
        print(f"server {server.url} (home {server.home})", flush=True)
        by_driver["overlayfs"] = asyncio.run(measure(server))
    with (
        temp_dir("cove-bench-btrfs-") as scratch,
        loopback_btrfs(scratch) as mount_point,
        running_server(mount_point) as server,
    ):
        print(f"server {server.url} (home {server.home}, on a loopback btrfs)", flush=True)
        by_driver["btrfs"] = asyncio.run(measure(server))
    return report(by_driver)


if __name__ == "__main__":
    print(main())
