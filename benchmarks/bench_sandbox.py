"""Sandbox benchmarks (issue 2): time to interactive, exec round-trip and kill time, plus where the time goes.

- **Time to interactive (TTI)**: ``AsyncSandbox.create()`` until ``exec.run("echo ready")`` has returned its
  output, through the SDK against a real ``cove serve``, interleaved run by run with a bare
  ``bwrap --ro-bind /usr /usr ... true`` — the floor no bwrap sandbox can beat on this machine. Measured as
  shipped (a warm pool of pre-started sandboxes, waited for before each run: the TTI of a create that arrives
  when the pool has had time to refill) and cold (``COVE_POOL_SIZE=0``: what a create gets from an empty pool).
- **Exec round-trip** on a warm sandbox: ``exec.run("true")`` through the SDK (HTTP), and the same command sent
  straight to the sandbox's supervisor socket with ``GuestClient``, which separates HTTP from sandbox overhead.
- **Kill**: ``sandbox.kill()`` through the SDK.
- **Profile**: the TTI split into stages measured one by one in this process (bwrap with Cove's arguments, the
  supervisor's Python start-up and imports, the driver's spawn with its readiness signal, the service's database
  work), and prototypes of the proposals that can be measured without changing ``src/``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    BenchServer,
    Stats,
    bwrap_path,
    markdown_table,
    ms,
    print_table,
    running_server,
    temp_dir,
    verdict,
)

TTI_RUNS = 50
EXEC_RUNS = 200
PROFILE_RUNS = 25
WARMUP = 3
TTI_TARGET_MS = 50.0
EGRESS_EXTRA_MS = 5.0
FLOOR_FACTOR = 3.0
EXEC_TARGET_MS = 10.0
PROFILE_UID = 3_990_000
FLOOR = "bare bwrap (the floor) → true"
BWRAP_TRUE = "bwrap with Cove's arguments (binds, namespaces, setenv) → true"
PYTHON_PASS = "… → setpriv → python -I -S -B -c pass"
PYTHON_IMPORT = "… → python, import the supervisor"
SPAWN = "driver.spawn (as shipped: readiness through a pipe)"
CREATE = "SandboxService.create (spawn + DB + bookkeeping)"
CREATE_SPAWN = "  its driver.spawn"
CREATE_DB = "  its database calls (next_uid, insert, update, get)"
CREATE_REST = "  the rest (prepare in a thread, event-loop hand-offs)"
KILL = "SandboxService.kill (in process)"
LEAN = "… import only what an asyncio-free supervisor needs (selectors, socket, json, subprocess, …)"


# --- the floor ----------------------------------------------------------------------------------------------------


def floor_command(bwrap: str) -> list[str]:
    """The barest useful bwrap: host /usr read-only (plus the usual /bin, /lib… links), then ``true``."""
    from cove.runtime.bwrap import root_links

    return [bwrap, "--ro-bind", "/usr", "/usr", *root_links(), "true"]


def time_command(command: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


# --- TTI, exec and kill through a real server ---------------------------------------------------------------------


@dataclass
class ServerResults:
    floor: list[float] = field(default_factory=list)
    tti: list[float] = field(default_factory=list)  # network "egress", the default
    tti_none: list[float] = field(default_factory=list)  # the same with network "none"
    create: list[float] = field(default_factory=list)
    first_exec: list[float] = field(default_factory=list)
    kill: list[float] = field(default_factory=list)
    sdk_exec: list[float] = field(default_factory=list)
    guest_exec: list[float] = field(default_factory=list)
    guest_exec_argv: list[float] = field(default_factory=list)
    guest_ping: list[float] = field(default_factory=list)
    sdk_get: list[float] = field(default_factory=list)
    sandbox_ids: list[str] = field(default_factory=list)
    cold_tti: list[float] = field(default_factory=list)
    cold_create: list[float] = field(default_factory=list)
    pooled_runs: int = 0


async def wait_for_pool(server: BenchServer) -> list[str]:
    """The ids the server's warm pool holds once full (``GET /v1/pool?wait=``); empty when it has no pool."""
    import httpx

    headers = {"authorization": f"Bearer {server.api_key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        reply = await client.get("/v1/pool", params={"wait": 30})
    ready: list[str] = reply.json()["ready"] if reply.status_code == 200 else []
    return ready


async def measure_cold(server: BenchServer, results: ServerResults) -> None:
    """TTI with the pool off: every create starts a sandbox (bwrap + the supervisor's Python start-up)."""
    from cove.sdk import AsyncClient, AsyncSandbox

    client = AsyncClient(server.url, server.api_key)
    try:
        for run in range(WARMUP + TTI_RUNS):
            started = time.perf_counter()
            sandbox = await AsyncSandbox.create(client=client)
            created = time.perf_counter()
            await sandbox.exec.run("echo ready")
            ready = time.perf_counter()
            await sandbox.kill()
            results.sandbox_ids.append(sandbox.id)
            if run >= WARMUP:
                results.cold_tti.append(ready - started)
                results.cold_create.append(created - started)
    finally:
        await client.aclose()


async def measure_server(server: BenchServer, results: ServerResults) -> None:
    from cove.runtime.guest_client import Exited, GuestClient
    from cove.sdk import AsyncClient, AsyncSandbox

    floor = floor_command(bwrap_path(server.env))
    client = AsyncClient(server.url, server.api_key)
    try:
        for run in range(WARMUP + TTI_RUNS):
            floor_time = time_command(floor)
            pooled = await wait_for_pool(server)
            started = time.perf_counter()
            sandbox = await AsyncSandbox.create(client=client)
            created = time.perf_counter()
            results.pooled_runs += int(run >= WARMUP and sandbox.id in pooled)
            result = await sandbox.exec.run("echo ready")
            ready = time.perf_counter()
            if result.stdout != "ready\n":
                raise RuntimeError(f"unexpected output from the new sandbox: {result.stdout!r}")
            await sandbox.kill()
            killed = time.perf_counter()
            results.sandbox_ids.append(sandbox.id)
            if run >= WARMUP:
                results.floor.append(floor_time)
                results.tti.append(ready - started)
                results.create.append(created - started)
                results.first_exec.append(ready - created)
                results.kill.append(killed - ready)
            # The same claim without a network: what attaching the egress veth and rules costs a create.
            await wait_for_pool(server)
            started = time.perf_counter()
            offline = await AsyncSandbox.create(client=client, network="none")
            await offline.exec.run("echo ready")
            if run >= WARMUP:
                results.tti_none.append(time.perf_counter() - started)
            await offline.kill()
            results.sandbox_ids.append(offline.id)

        sandbox = await AsyncSandbox.create(client=client)
        results.sandbox_ids.append(sandbox.id)
        root = server.home / "sandboxes" / sandbox.id
        guest = GuestClient(root / "guest.sock", (root / "run").stat().st_uid)

        async def guest_exec(command: list[str]) -> None:
            fields: dict[str, Any] = {"command": command, "env": {}, "cwd": None, "timeout": None}
            async with guest.process("exec", **fields, stdin=False, tag=None) as stream:
                async for item in stream:
                    if isinstance(item, Exited):
                        return

        async def sdk_true() -> None:
            await sandbox.exec.run("true")

        async def ping() -> None:
            await guest.request("ping")

        async def get() -> None:
            await sandbox.refresh()

        loops: list[tuple[list[float], Callable[[], Awaitable[None]]]] = [
            (results.sdk_exec, sdk_true),
            (results.guest_exec, lambda: guest_exec(["/bin/bash", "-c", "true"])),
            (results.guest_exec_argv, lambda: guest_exec(["true"])),
            (results.guest_ping, ping),
            (results.sdk_get, get),
        ]
        for samples, call in loops:
            for run in range(WARMUP * 5 + EXEC_RUNS):
                started = time.perf_counter()
                await call()
                if run >= WARMUP * 5:
                    samples.append(time.perf_counter() - started)
        await sandbox.kill()
    finally:
        await client.aclose()


# --- the profile: the TTI stage by stage, in this process ---------------------------------------------------------


@dataclass
class Profile:
    stages: dict[str, Stats] = field(default_factory=dict)
    imports: dict[str, Stats] = field(default_factory=dict)
    import_top: list[tuple[str, float]] = field(default_factory=list)
    idle_pss_mb: list[float] = field(default_factory=list)


def _without_info_fd(command: list[str]) -> list[str]:
    if len(command) > 2 and command[1] == "--info-fd":
        return [command[0], *command[3:]]
    return command


def _stage_commands(command: list[str]) -> dict[str, list[str]]:
    """Cove's own bwrap command line, with the supervisor replaced by ever larger parts of itself."""
    command = _without_info_fd(command)
    split = command.index("--")
    bwrap_part, guest_part = command[:split], command[split + 1 :]
    python_at = next(i for i, arg in enumerate(guest_part) if arg == "-c") + 1
    setpriv_python = guest_part[:python_at]  # setpriv ... python -I -S -B -c
    bootstrap = guest_part[python_at]
    import_only = bootstrap.replace("from cove.guest.supervisor import main; main()", "import cove.guest.supervisor")
    return {
        FLOOR: floor_command(command[0]),
        BWRAP_TRUE: [*bwrap_part, "--", "true"],
        PYTHON_PASS: [*bwrap_part, "--", *setpriv_python, "pass"],
        PYTHON_IMPORT: [*bwrap_part, "--", *setpriv_python, import_only],
    }


def _pss_mb(pid: int) -> float:
    """Proportional set size of a process (shared pages split among their users), in MB; 0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _remove_cgroups_and_files(driver: Any, sandbox_id: str, root: Path, pid: int | None = None) -> None:
    """Remove a killed sandbox's files and cgroups. A cgroup can only go once its processes are reaped, so wait
    for the sandbox's bwrap to be gone first (removing it too early leaves an empty cgroup behind)."""
    deadline = time.monotonic() + 5
    while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    for _ in range(50):
        driver.cgroups.kill_all(sandbox_id)
        driver.cgroups.remove(sandbox_id)
        shutil.rmtree(root, ignore_errors=True)
        if not root.exists():
            return
        time.sleep(0.02)


def remove_leftover_cgroups(sandbox_ids: list[str]) -> None:
    """``SandboxService`` removes a killed sandbox's cgroups before its processes are reaped, which can leave
    empty cgroup directories behind; the benchmark removes those of the sandboxes it made."""
    from cove.runtime.cgroups import detect

    cgroups = detect()
    for attempt in range(3):
        if attempt:
            time.sleep(0.2)
        for sandbox_id in sandbox_ids:
            cgroups.remove(sandbox_id)


async def profile_stages(home: Path, profile: Profile) -> None:
    """Every stage once per round, rounds repeated: the stages share the machine's noise, so their p50s compare."""
    from cove.config import ServerSettings
    from cove.runtime.bwrap import BwrapDriver, SandboxPaths, wait_exited
    from cove.runtime.cgroups import detect
    from cove.runtime.layers import LayerStore
    from cove.runtime.spec import SandboxSpec
    from cove.runtime.storage import OverlayStorage
    from cove.services.principal import SYSTEM
    from cove.services.sandboxes import CreateRequest, SandboxService
    from cove.store.db import open_engine
    from cove.store.sandboxes import SandboxStore
    from cove.store.writer import SqliteWriter

    settings = ServerSettings(home=home, pool_size=0, default_network="none")  # the cold path, stage by stage
    settings.sandboxes_dir.mkdir(parents=True, exist_ok=True)
    driver = BwrapDriver(detect())
    layers = LayerStore(settings.layers_dir)
    layers.ensure()
    storage = OverlayStorage(layers, settings.views_dir, settings.scratch_dir)
    spec = SandboxSpec()
    probe = SandboxPaths(settings.sandboxes_dir / "sbx_profileprobe00")
    driver.prepare(probe, PROFILE_UID)
    for directory in (probe.workspace, probe.home):  # plain directories: the stages need no overlay
        directory.mkdir(parents=True, exist_ok=True)
    # bwrap with Cove's exact arguments, running ever larger parts of the supervisor's start.
    commands = _stage_commands(driver.command("sbx_profileprobe00", spec, probe, PROFILE_UID, 0, 0, None))
    samples: dict[str, list[float]] = {name: [] for name in [*commands, SPAWN, "prepare"]}
    samples.update({name: [] for name in (CREATE, CREATE_SPAWN, CREATE_DB, CREATE_REST, KILL)})
    engine = await open_engine(settings.database_path)
    store = SandboxStore(engine, SqliteWriter(engine))
    service = SandboxService(settings, store, driver, storage, None)  # no egress: the profile measures the rest
    spent: dict[str, float] = {}
    created_ids: list[str] = []

    async def spawn_once(sandbox_id: str, uid: int) -> tuple[float, float]:
        paths = SandboxPaths(settings.sandboxes_dir / sandbox_id)
        created_ids.append(sandbox_id)
        started = time.perf_counter()
        driver.prepare(paths, uid)
        storage.mount(paths.root, [], uid)
        prepared = time.perf_counter()
        spawned = await driver.spawn(sandbox_id, spec, paths, uid)
        done = time.perf_counter()
        profile.idle_pss_mb.append(_pss_mb(spawned.pid) + _pss_mb(spawned.init_pid))
        driver.kill(sandbox_id, spawned.init_pid)
        await asyncio.to_thread(wait_exited, spawned.pid)
        driver.release(paths)
        storage.release(paths.root)
        await asyncio.to_thread(_remove_cgroups_and_files, driver, sandbox_id, paths.root, spawned.pid)
        return prepared - started, done - prepared

    try:
        for run in range(WARMUP + PROFILE_RUNS):
            keep = run >= WARMUP
            for name, command in commands.items():
                elapsed = time_command(command)
                if keep:
                    samples[name].append(elapsed)
            prepare, spawn = await spawn_once(f"sbx_profile{run:04d}", PROFILE_UID + 1 + run)
            if keep:
                samples[SPAWN].append(spawn)
                samples["prepare"].append(prepare)
            # The service's create, its driver and store wrapped with timers to split each run.
            spent.clear()
            _time_methods(driver, ["spawn"], spent, "spawn")
            _time_methods(store, ["next_uid", "insert", "update", "get"], spent, "db")
            try:
                started = time.perf_counter()
                record = await service.create(SYSTEM, CreateRequest(spec=spec))
                created = time.perf_counter()
            finally:
                for target, names in ((driver, ["spawn"]), (store, ["next_uid", "insert", "update", "get"])):
                    for name in names:
                        target.__dict__.pop(name, None)
            split = dict(spent)
            await service.kill(SYSTEM, record.id)
            created_ids.append(record.id)
            if keep:
                total = created - started
                samples[CREATE].append(total)
                samples[CREATE_SPAWN].append(split.get("spawn", 0.0))
                samples[CREATE_DB].append(split.get("db", 0.0))
                samples[CREATE_REST].append(total - split.get("spawn", 0.0) - split.get("db", 0.0))
                samples[KILL].append(time.perf_counter() - created)
    finally:
        await engine.dispose()
        await asyncio.to_thread(remove_leftover_cgroups, created_ids)
        driver.release(probe)
        shutil.rmtree(probe.root, ignore_errors=True)
    for name in [*commands, SPAWN]:
        profile.stages[name] = Stats.of(samples[name])
    profile.stages["driver.prepare + storage.mount (directories, passwd, overlay)"] = Stats.of(samples["prepare"])
    for name in (CREATE, CREATE_SPAWN, CREATE_DB, CREATE_REST, KILL):
        profile.stages[name] = Stats.of(samples[name])


def _time_methods(target: object, names: list[str], spent: dict[str, float], bucket: str) -> None:
    """Wrap coroutine methods of one instance so that the time spent in them adds up in ``spent[bucket]``."""
    for name in names:
        method = getattr(target, name)

        async def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await _method(*args, **kwargs)
            finally:
                spent[bucket] = spent.get(bucket, 0.0) + time.perf_counter() - started

        setattr(target, name, timed)


def profile_imports(profile: Profile) -> None:
    """The supervisor's Python start-up outside any sandbox: what it imports and what that costs."""
    from cove.runtime.bwrap import GUEST_CODE, BwrapDriver, _code_root, python_executable

    python = python_executable()
    # Outside the sandbox the code is at its host path, not where the sandbox binds it.
    bootstrap = BwrapDriver._guest_bootstrap().replace(repr(GUEST_CODE), repr(_code_root()))
    import_only = bootstrap.replace("from cove.guest.supervisor import main; main()", "import cove.guest.supervisor")
    base = [python, "-I", "-S", "-B", "-c"]
    variants = {
        "python -I -S -B -c pass": "pass",
        "… import asyncio": "import asyncio",
        LEAN: "import selectors, socket, json, struct, subprocess, pathlib, argparse",
        "… import the supervisor (as shipped)": import_only,
    }
    with tempfile.TemporaryDirectory(prefix="cove-bench-pyc-") as scratch:
        # For comparison: the same code without bytecode, as every sandbox compiled it before the server began
        # precompiling the guest at start-up (the read-only bind and -B keep a sandbox from caching it).
        copy = Path(scratch) / "src"
        shutil.copytree(Path(_code_root()) / "cove", copy / "cove", ignore=shutil.ignore_patterns("__pycache__"))
        variants["… import the supervisor, compiled from source (before precompiling)"] = import_only.replace(
            repr(_code_root()), repr(str(copy))
        )
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for run in range(WARMUP + PROFILE_RUNS):
            for name, code in variants.items():  # interleaved, so the variants share the machine's noise
                elapsed = time_command([*base, code])
                if run >= WARMUP:
                    samples[name].append(elapsed)
        for name in variants:
            profile.imports[name] = Stats.of(samples[name])
    trace = subprocess.run([*base[:-1], "-X", "importtime", "-c", import_only], capture_output=True, text=True)
    profile.import_top = _top_level_imports(trace.stderr)


def _top_level_imports(
    trace: str, root: str = "cove.guest.supervisor", floor_ms: float = 0.5
) -> list[tuple[str, float]]:
    """The first two levels under ``root`` in an ``-X importtime`` trace, with their cumulative ms.

    The trace lists children before their parent, indented two spaces per level; entries under ``floor_ms`` are
    left out."""
    pending: list[tuple[int, str, float]] = []
    for line in trace.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)", line)
        if not match:
            continue
        depth, name, cost = len(match[2]) // 2, match[3], int(match[1]) / 1000
        if depth > 0:
            pending.append((depth, name, cost))
            continue
        if name == root:
            rows = [("  " * d + n, c) for d, n, c in pending if d <= 2 and c >= floor_ms]
            return [*rows, (name, cost)]
        pending = []
    return []


# --- report -------------------------------------------------------------------------------------------------------


def _row(name: str, stats: Stats) -> list[str]:
    return [name, str(stats.n), ms(stats.p50), ms(stats.p95), ms(stats.min)]


HEADERS = ["measurement", "n", "p50 ms", "p95 ms", "min ms"]


@dataclass(frozen=True)
class Proposal:
    title: str
    gain_ms: float
    basis: str


def proposals(results: ServerResults, profile: Profile) -> list[Proposal]:
    stage = profile.stages
    imports = profile.imports
    asyncio_cost = imports["… import asyncio"].p50 - imports["python -I -S -B -c pass"].p50
    lean_cost = imports[LEAN].p50 - imports["python -I -S -B -c pass"].p50
    db_cost = stage[CREATE_DB].p50
    items = [
        Proposal(
            "A supervisor without asyncio (selectors + os.posix_spawn, or lazy imports so only what serving "
            "needs loads before the socket is up)",
            asyncio_cost - lean_cost,
            f"measured: importing asyncio costs {ms(asyncio_cost)} ms over bare start-up here, the modules an "
            f"asyncio-free loop needs {ms(lean_cost)} ms. asyncio also pulls in `typing`, which `cove/__init__.py` "
            "imports too (`from typing import TYPE_CHECKING`): both must go for the gain, and the agent runner "
            "(which needs asyncio) is a separate process anyway",
        ),
        Proposal(
            "Fewer database round-trips on create (one INSERT of the running record after spawn, the uid from an "
            "in-memory counter, no read-back)",
            db_cost,
            f"measured: the four store calls of one create take {ms(db_cost)} ms (p50); one INSERT would take "
            "about a quarter of that",
        ),
    ]
    return sorted(items, key=lambda p: p.gain_ms, reverse=True)


def report(results: ServerResults, profile: Profile | None, profile_error: str | None, loads: list[str]) -> str:
    tti, floor, cold = Stats.of(results.tti), Stats.of(results.floor), Stats.of(results.cold_tti)
    sdk_exec = Stats.of(results.sdk_exec)
    ratio = tti.p50 / floor.p50 if floor.p50 else float("inf")
    tti_none = Stats.of(results.tti_none)
    targets = [
        ["TTI p50 < 50 ms (network egress, the default)", f"{ms(tti.p50)} ms", verdict(tti.p50 < TTI_TARGET_MS)],
        [
            "TTI p50 with egress within 5 ms of network none",
            f"{ms(tti.p50)} vs {ms(tti_none.p50)} ms ({tti.p50 - tti_none.p50:+.2f})",
            verdict(tti.p50 - tti_none.p50 <= EGRESS_EXTRA_MS),
        ],
        [
            "TTI p50 within 3x the bare-bwrap floor",
            f"{ratio:.1f}x ({ms(tti.p50)} / {ms(floor.p50)} ms)",
            verdict(ratio <= FLOOR_FACTOR),
        ],
        ["exec round-trip p50 < 10 ms (SDK, HTTP)", f"{ms(sdk_exec.p50)} ms", verdict(sdk_exec.p50 < EXEC_TARGET_MS)],
        ["(not a target) TTI p50 cold, pool off or empty", f"{ms(cold.p50)} ms", "—"],
    ]
    measured = [
        _row("TTI: create → `echo ready` output (SDK), warm pool, network egress", tti),
        _row("TTI the same with network none", tti_none),
        _row("  of which `AsyncSandbox.create` (POST /v1/sandboxes: a claim)", Stats.of(results.create)),
        _row("  of which the first `exec.run('echo ready')`", Stats.of(results.first_exec)),
        _row("TTI cold (`COVE_POOL_SIZE=0`): create → `echo ready` output", cold),
        _row("  of which `AsyncSandbox.create` (a cold start)", Stats.of(results.cold_create)),
        _row("floor: bare `bwrap --ro-bind /usr /usr … true`", floor),
        _row("exec round-trip `exec.run('true')` (SDK → HTTP → guest)", sdk_exec),
        _row("exec `bash -c true` straight on the guest socket", Stats.of(results.guest_exec)),
        _row("exec `true` (argv, no bash) on the guest socket", Stats.of(results.guest_exec_argv)),
        _row("guest `ping` (socket round-trip, no process)", Stats.of(results.guest_ping)),
        _row("GET /v1/sandboxes/{id} (SDK `refresh`)", Stats.of(results.sdk_get)),
        _row("kill: `sandbox.kill()` (SDK)", Stats.of(results.kill)),
    ]
    print_table("Targets", ["target", "measured", "result"], targets)
    print_table("Measurements", HEADERS, measured)
    http_overhead = sdk_exec.p50 - Stats.of(results.guest_exec).p50
    bash_cost = Stats.of(results.guest_exec).p50 - Stats.of(results.guest_exec_argv).p50
    lines = [
        "## Sandboxes — time to interactive, exec round-trip, kill (`bench_sandbox`)",
        "",
        f"TTI: {TTI_RUNS} runs of SDK `AsyncSandbox.create()` (one shared client) → `exec.run('echo ready')`, "
        f"interleaved run by run with {TTI_RUNS} bare-bwrap runs, each after waiting for the warm pool "
        f"(`COVE_POOL_SIZE`, default 2) to be full — {results.pooled_runs} of {TTI_RUNS} creates claimed a pooled "
        f"sandbox; the same {TTI_RUNS} runs again on a server with `COVE_POOL_SIZE=0` (cold); exec: {EXEC_RUNS} "
        "runs on one warm sandbox; warm-up runs dropped from each series. Default sandbox spec (network none, no "
        "limits). "
        f"1-minute load average at the start, after the server run and after the profile: {' → '.join(loads)} "
        f"on {os.cpu_count()} cores (other work on the machine inflates every number, the profile's most).",
        "",
        "### Targets",
        "",
        markdown_table(["target", "measured", "result"], targets),
        "",
        "### Measurements",
        "",
        markdown_table(HEADERS, measured),
        "",
        f"HTTP overhead of an exec (SDK − guest socket, p50): {ms(http_overhead)} ms; bash's share of "
        f"`exec.run('true')` (`bash -c true` − `true` on the socket): {ms(bash_cost)} ms.",
        "",
        "### Where time to interactive goes",
        "",
    ]
    if profile is None:
        lines.append(f"The stage profile failed this run and is not reported: `{profile_error}`.")
    else:
        lines += profile_report(results, profile)
    return "\n".join(lines)


def profile_report(results: ServerResults, profile: Profile) -> list[str]:
    tti, floor = Stats.of(results.cold_tti), Stats.of(results.floor)
    stages = [_row(name, stats) for name, stats in profile.stages.items()]
    imports = [_row(name, stats) for name, stats in profile.imports.items()]
    print_table("Where TTI goes (stages measured in the benchmark process)", HEADERS, stages)
    print_table("The supervisor's Python start-up (outside the sandbox)", HEADERS, imports)
    stage = profile.stages
    floor_p50 = stage[FLOOR].p50
    spawn = stage[SPAWN].p50
    python_pass = stage[PYTHON_PASS].p50
    python_import = stage[PYTHON_IMPORT].p50
    http = Stats.of(results.sdk_get).p50
    first_exec = Stats.of(results.first_exec).p50
    parts = [
        ("bare bwrap → true (the floor)", floor_p50),
        (
            "Cove's bwrap arguments over the floor (binds, pid/net/ipc/uts namespaces)",
            stage[BWRAP_TRUE].p50 - floor_p50,
        ),
        ("setpriv + Python interpreter start-up (-I -S -B)", python_pass - stage[BWRAP_TRUE].p50),
        (
            "importing the supervisor (asyncio without ssl, cove.guest; from the precompiled bytecode)",
            python_import - python_pass,
        ),
        (
            "the rest of the spawn: cgroups, sh launcher, event loop, socket, readiness pipe",
            spawn - python_import,
        ),
        ("database calls in SandboxService.create (next_uid, insert, update, get)", stage[CREATE_DB].p50),
        ("the rest of SandboxService.create (prepare in a thread, hand-offs)", stage[CREATE_REST].p50),
        ("HTTP for the create request (≈ a GET /v1/sandboxes/{id} round-trip)", http),
        ("the first exec: `echo ready` through HTTP → guest → bash", first_exec),
    ]
    total = sum(value for _, value in parts)
    breakdown = [[name, ms(value)] for name, value in parts]
    breakdown += [
        ["sum of the parts", ms(total)],
        ["TTI p50 measured end to end (server run, cold)", ms(tti.p50)],
    ]
    print_table("TTI breakdown (p50, ms)", ["part", "ms"], breakdown)
    ranked = proposals(results, profile)
    print("\nProposals, ranked by gain on TTI p50:")
    for number, proposal in enumerate(ranked, 1):
        print(f"{number}. [{ms(proposal.gain_ms, 1)} ms] {proposal.title}\n   {proposal.basis}")
    cold_tti = tti.p50 - sum(max(p.gain_ms, 0.0) for p in ranked)
    budget = FLOOR_FACTOR * floor.p50
    reading = (
        "**Reading.** With a Python supervisor as PID 1 a cold start cannot meet the 3x-floor target: Cove's bwrap "
        f"running only `python -I -S -B -c pass` already takes {ms(python_pass)} ms against a budget of "
        f"{ms(budget)} ms (3 × {ms(floor.p50)}). The cold-path proposals below together would bring TTI p50 to "
        f"about {ms(cold_tti, 0)} ms (their gains barely overlap), "
        + ("under" if cold_tti < TTI_TARGET_MS else "still over")
        + " the 50 ms target."
    )
    warm = Stats.of(results.tti).p50
    pss = ms(statistics.median(profile.idle_pss_mb), 1) if profile.idle_pss_mb else "?"
    reading += (
        f" The warm pool (applied) takes the start out of the create: TTI {ms(warm)} ms p50 when a pooled sandbox "
        f"is ready, {warm / floor.p50:.1f}x the floor; what is left is a claim (limits, env and the row written) "
        "and the first exec itself (HTTP + bash + a process). A create that finds the pool empty (a burst of more "
        "than `COVE_POOL_SIZE` creates within ~0.1 s per slot) pays the cold path. Each pooled sandbox holds "
        f"{pss} MB (PSS of bwrap + an idle supervisor) and one uid."
    )
    print(f"\n{reading}")
    top = "\n".join(f"{name:<42} {cost:7.2f} ms" for name, cost in profile.import_top)
    return [
        "The cold path, stage by stage. Each stage is measured on its own in the benchmark process with Cove's "
        "own code and arguments "
        "(the bwrap command line from `BwrapDriver.command`, the driver's `spawn`, the service's `create` with its "
        "driver and store calls timed), all stages once per round, rounds repeated so they share the machine's "
        f"noise ({PROFILE_RUNS} rounds). Parts are differences of p50s, so they are approximate and may not add up "
        "exactly to the end-to-end TTI, which comes from the server run above.",
        "",
        markdown_table(["part", "ms (p50)"], breakdown),
        "",
        markdown_table(HEADERS, stages),
        "",
        "The supervisor's interpreter start-up, measured outside the sandbox with the same interpreter and flags:",
        "",
        markdown_table(HEADERS, imports),
        "",
        "Import tree of `cove.guest.supervisor` (`-X importtime`, cumulative ms, two levels, ≥ 0.5 ms; one run; "
        "children are listed before their parent):",
        "",
        "```",
        top,
        "```",
        "",
        reading,
        "",
        "### Proposals for the cold path, ranked by gain on its TTI p50 (the warm pool, ranked first last time, is "
        "applied)",
        "",
        *[f"{number}. **{p.title}** — about {ms(p.gain_ms, 1)} ms. {p.basis}." for number, p in enumerate(ranked, 1)],
    ]


def main() -> str:
    if os.geteuid() != 0:
        print("note: not root; sandboxes run as the current user, cgroups may be unavailable", file=sys.stderr)
    results = ServerResults()
    loads = [_loadavg()]
    with running_server() as server:
        print(f"server {server.url} (home {server.home})", flush=True)
        try:
            asyncio.run(measure_server(server, results))
        finally:
            server.kill_all_sandboxes()
            remove_leftover_cgroups(results.sandbox_ids)
    with running_server(COVE_POOL_SIZE="0") as server:
        print(f"server {server.url} without a pool (home {server.home})", flush=True)
        try:
            asyncio.run(measure_cold(server, results))
        finally:
            server.kill_all_sandboxes()
            remove_leftover_cgroups(results.sandbox_ids)
    loads.append(_loadavg())
    profile = Profile()
    try:
        with temp_dir("cove-bench-profile-") as base:
            asyncio.run(profile_stages(base / "home", profile))
        profile_imports(profile)
    except Exception as exc:  # the profile reaches into src/, which may change under it; keep the headline
        traceback.print_exc()
        return report(results, None, f"{type(exc).__name__}: {exc}", loads)
    loads.append(_loadavg())
    return report(results, profile, None, loads)


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "?"


if __name__ == "__main__":
    print(main())
