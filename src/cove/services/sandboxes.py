"""SandboxService: the life of a sandbox — create, find, list, time out, kill, recover after a restart."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cove.config import ServerSettings
from cove.quotas import Quotas
from cove.runtime.bwrap import (
    DISK_TOLERANCE_MB,
    BwrapDriver,
    SandboxPaths,
    SandboxStartError,
    rlimit_fallbacks,
    wait_exited,
)
from cove.runtime.egress import Egress
from cove.runtime.guest_client import GuestClient, GuestError, GuestUnavailable
from cove.runtime.held_files import deleted_but_open
from cove.runtime.netpolicy import NetworkPolicy
from cove.runtime.network import LiveSandbox, NetworkError, Networks
from cove.runtime.spec import SandboxSpec
from cove.runtime.storage import Storage
from cove.services.errors import (
    Conflict,
    CoveServiceError,
    NetworkModeForbidden,
    NetworkUnavailable,
    SandboxNotFound,
    SandboxNotRunning,
    SandboxStartFailed,
    Unavailable,
)
from cove.services.pool import WarmPool
from cove.services.principal import SYSTEM, Access, Principal
from cove.services.quotas import QuotaLocks, admit, within
from cove.store.sandboxes import SandboxRecord, SandboxStore
from cove.store.tables import HIDDEN_STATES, POOLED, UNCLAIMED

log = logging.getLogger("cove.sandboxes")

RUNNING = "running"
STOPPED = "stopped"
STARTING = "starting"
FAILED = "failed"
DISK_CHECK_INTERVAL = 5.0
# What an inode counts as against a disk quota at the least: ext4 makes one inode per 16 KiB of its size, so a
# sandbox's share of the host's inodes is never more than its share of the host's bytes.
INODE_BYTES = 16 * 1024
POOL_REFILL_DELAY = 0.1
_SANDBOX_ID = re.compile(r"sbx_[0-9a-f]{16}")


@dataclass(frozen=True)
class CreateRequest:
    spec: SandboxSpec
    timeout: float | None = None
    idle_timeout: float | None = None
    labels: dict[str, str] | None = None
    layers: tuple[str, ...] = ()  # the checkpoint chain a fork starts from (bottom first); empty = fresh


@dataclass(frozen=True)
class SandboxUsage:
    """What a tenant's sandboxes take now (running, or starting)."""

    running: int
    memory_mb: int


async def _disk_usages(roots: list[Path], storage: Storage) -> dict[Path, int]:
    """The disk each sandbox's own files take (of those still there). ``du -x`` stays off the storage's view (merged/
    and the slots are mounts of another filesystem, or of a subvolume): the quota counts the sandbox's own files,
    not the layers it stands on; what that leaves out of its own (a btrfs subvolume) the storage counts. ``du``
    rather than a walk in Python, which held the GIL — against the event loop — for about 100 ms per 20,000 files,
    every pass; one ``du`` for every sandbox of a pass, as starting a process holds the loop for a few milliseconds
    (a fork of the server). The sandboxes share no inode, so ``du`` counting a hard-linked file once among them all
    is the same as once in each.

    Inodes are host disk too, of which a filesystem has a fixed number: a sandbox's files count as at least
    ``INODE_BYTES`` each, so that empty files cannot use up the host's inodes under a quota of bytes."""
    blocks, inodes = await asyncio.gather(_du(["-sxB1"], roots), _du(["-sx", "--inodes"], roots))
    walked = {root: max(size, inodes.get(root, 0) * INODE_BYTES) for root, size in blocks.items()}
    own = await asyncio.to_thread(lambda: {root: storage.own_bytes(root) for root in walked})
    return {root: walked[root] + own[root] for root in walked}


async def _du(options: list[str], roots: list[Path]) -> dict[Path, int]:
    """``du`` with ``options`` over ``roots``: each root's total (roots gone are left out)."""
    process = await asyncio.create_subprocess_exec(
        "du",
        *options,
        "--null",
        "--",
        *map(str, roots),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    output, _ = await process.communicate()  # a file deleted mid-walk makes du fail, but it still sums the rest
    totals: dict[Path, int] = {}
    for entry in output.split(b"\0"):
        total, tab, root = entry.partition(b"\t")
        if tab and total.isdigit():
            totals[Path(os.fsdecode(root))] = int(total)
    return totals


class SandboxService:
    def __init__(
        self,
        settings: ServerSettings,
        store: SandboxStore,
        driver: BwrapDriver,
        storage: Storage,
        egress: Egress | None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._driver = driver
        self.storage = storage
        # None when this host cannot give sandboxes the "egress" network (no nftables, say): only none and host.
        self._egress = egress
        self._default_network = NetworkPolicy.parse(settings.default_network)
        if self._default_network.mode == "host" and not settings.allow_host_network:
            raise ValueError("the default network 'host' needs --allow-host-network (COVE_ALLOW_HOST_NETWORK=1)")
        self.on_stopped: list[Callable[[str], Awaitable[None]]] = []
        # Called before a restore kills every process in a sandbox (agent runners included).
        self.on_restarting: list[Callable[[str], Awaitable[None]]] = []
        self._uid_lock = asyncio.Lock()
        self._last_active: dict[str, float] = {}
        self._unsaved_activity: set[str] = set()
        self._last_disk_check = 0.0
        # What the disk-quota watchdog last measured of each sandbox's own files (sandboxes with a quota only).
        self.disk_used: dict[str, int] = {}
        self.pool = WarmPool(settings.pool_size, self._spawn_pooled, self._discard_pooled)
        # Sandboxes on the host's network are started apart (bwrap shares the namespace or makes one, once): their
        # pool fills after the first such create, on a server that allows them at all.
        host_pool_size = settings.pool_size if settings.allow_host_network else 0
        self.host_pool = WarmPool(host_pool_size, self._spawn_pooled_host, self._discard_pooled)
        self._quota_locks = QuotaLocks()
        # Pooled sandboxes hold the read end: when this process dies, however, the write end closes and the
        # unclaimed ones end themselves (see BwrapDriver.spawn).
        self._lifeline, self._lifeline_writer = os.pipe()

    @property
    def _networks(self) -> Networks | None:
        return self._egress.networks if self._egress is not None else None

    def paths(self, sandbox_id: str) -> SandboxPaths:
        return SandboxPaths(self._settings.sandboxes_dir / sandbox_id)

    def _with_defaults(self, spec: SandboxSpec, quotas: Quotas | None = None) -> SandboxSpec:
        network = spec.network if spec.network is not None else self._default_network
        self._check_network(network)
        limits = spec.limits.over(self._settings.default_limits)
        if quotas is not None:
            limits = within(spec.limits, limits, quotas.max_limits)
        return replace(spec, network=network, limits=limits)

    def _check_network(self, network: NetworkPolicy) -> None:
        if network.mode == "host" and not self._settings.allow_host_network:
            raise NetworkModeForbidden(
                "network mode 'host' shares the host's network (its loopback services, the Cove API, cloud metadata) "
                "and this server does not allow it: use 'egress', or start the server with --allow-host-network"
            )
        if network.mode == "egress" and self._networks is None:
            raise NetworkUnavailable(
                "this host cannot give sandboxes the 'egress' network (see the server's log); use 'none', or start "
                "the server with --default-network none"
            )

    def _pool_for(self, spec: SandboxSpec) -> WarmPool | None:
        """The pool whose sandboxes can become this one, if any: what is fixed when bwrap starts must match (a
        network namespace of its own — an egress one gets its network at the claim — or the host's; /dev/shm)."""
        if spec.limits.shm_mb != self._settings.default_limits.shm_mb:
            return None
        return self.host_pool if spec.network_mode == "host" else self.pool

    async def create(self, who: Principal, request: CreateRequest) -> SandboxRecord:
        """A sandbox of ``who``'s tenant for ``request``, with the server's default for every limit it leaves out
        (within the tenant's largest): claimed from the warm pool when the spec allows it (a fork too: its files
        are attached at the claim), else started cold. Either way the pool is topped up in the background
        afterwards, so the create never waits for it."""
        who.require(Access.OWN, doing="create sandboxes")
        request = replace(request, spec=self._with_defaults(request.spec, who.quotas))
        async with self._quota_locks.hold(who):
            if who.quotas is not None:
                await self._admit(who.tenant_id, who.quotas, request.spec)
            pool = self._pool_for(request.spec)
            try:
                if pool is not None and (pooled := pool.take()) is not None:
                    try:
                        return await self._claim(pooled, request, who.tenant_id)
                    except (GuestUnavailable, GuestError, OSError, NetworkError) as exc:
                        log.warning("pooled sandbox %s could not be claimed (%s); starting one cold", pooled.id, exc)
                        await self._discard_pooled(pooled)
                return await self._start(request, pooled=False, tenant_id=who.tenant_id)
            finally:
                # Not at once: a spawn takes a core for ~60 ms, and what comes right after a create (its first
                # exec, its files) is what the user waits for.
                (pool or self.pool).refill(delay=POOL_REFILL_DELAY)

    async def _admit(self, tenant_id: str, quotas: Quotas, spec: SandboxSpec) -> None:
        used = await self.usage(tenant_id)
        admit("running_sandboxes", quotas.running_sandboxes, used.running, 1, f"this tenant has {used.running} running")
        if quotas.running_memory_mb is not None and spec.limits.memory_mb is None:
            admit("running_memory_mb", quotas.running_memory_mb, 0, float("inf"), "the sandbox has no memory limit")
        memory = spec.limits.memory_mb or 0
        detail = f"its running sandboxes have {used.memory_mb} MiB and this one asks for {memory}"
        admit("running_memory_mb", quotas.running_memory_mb, used.memory_mb, memory, detail)

    async def usage(self, tenant_id: str) -> SandboxUsage:
        """What ``tenant_id``'s sandboxes take now: how many run (or start), and their memory limits added up."""
        live = [r for state in (RUNNING, STARTING) for r in await self._store.list(state=state, tenant_id=tenant_id)]
        memory = sum(SandboxSpec.from_json(r.spec).limits.memory_mb or 0 for r in live)
        return SandboxUsage(running=len(live), memory_mb=memory)

    async def _start(self, request: CreateRequest, *, pooled: bool, tenant_id: str | None = None) -> SandboxRecord:
        """A cold start: directories, overlay, bwrap and the supervisor. A pooled sandbox stays ``pooled``."""
        now = time.time()
        async with self._uid_lock:
            record = SandboxRecord(
                id="sbx_" + secrets.token_hex(8),
                state=POOLED if pooled else STARTING,
                created_at=now,
                updated_at=now,
                last_active_at=now,
                uid=await self._store.next_uid(),
                spec=request.spec.to_json(),
                enforced={},
                labels=dict(request.labels or {}),
                expires_at=now + request.timeout if request.timeout else None,
                idle_timeout=request.idle_timeout,
                tenant_id=tenant_id,
            )
            await self._store.insert(record)
        paths = self.paths(record.id)
        try:
            await asyncio.to_thread(self._driver.prepare, paths, record.uid)
            await asyncio.to_thread(self.storage.mount, paths.root, list(request.layers), record.uid)
            lifeline = self._lifeline if pooled else None
            spawned = await self._driver.spawn(record.id, request.spec, paths, record.uid, lifeline)
            await asyncio.to_thread(self._driver.attach, paths)
            await self._attach_network(record.id, record.uid, spawned.init_pid, request.spec)
        except (SandboxStartError, OSError, NetworkError) as exc:
            await self._store.update(record.id, state=UNCLAIMED if pooled else FAILED, stop_reason=str(exc)[:2000])
            await self._free(record.id, None)
            raise SandboxStartFailed(str(exc)) from exc
        state = POOLED if pooled else RUNNING
        await self._store.update(
            record.id, state=state, pid=spawned.pid, init_pid=spawned.init_pid, enforced=spawned.enforced
        )
        if pooled:
            record.pid, record.init_pid, record.enforced = spawned.pid, spawned.init_pid, spawned.enforced
            return record
        return await self.get(record.id)

    # -- the warm pool (services.pool) -------------------------------------------------------------------

    def warm_pool(self, who: Principal, host: bool = False) -> WarmPool:
        """The warm pool (of sandboxes on the host's network with ``host``), to look at or drain: the admin's
        alone (it serves every tenant)."""
        who.require(Access.ADMIN, doing="look at or drain the warm pool")
        return self.host_pool if host else self.pool

    async def drain_pools(self) -> None:
        """Discard every pooled sandbox and stop refilling (shutdown, or the admin's drain: creates start cold)."""
        await self.pool.drain()
        await self.host_pool.drain()

    def start_pool(self) -> None:
        """Fill the warm pool in the background; called once the server has recovered its sandboxes."""
        self.pool.refill()

    async def _spawn_pooled(self) -> SandboxRecord:
        # With the server's default network already, where it is egress and the host can give it: most creates
        # ask for the default, and their claim then changes rules at most; a claim for "none" takes it away.
        egress = self._default_network.mode == "egress" and self._networks is not None
        network = self._default_network if egress else NetworkPolicy("none")
        spec = self._with_defaults(SandboxSpec(network=network))
        return await self._start(CreateRequest(spec=spec), pooled=True)

    async def _spawn_pooled_host(self) -> SandboxRecord:
        spec = self._with_defaults(SandboxSpec(network=NetworkPolicy("host")))
        return await self._start(CreateRequest(spec=spec), pooled=True)

    async def _discard_pooled(self, record: SandboxRecord) -> None:
        await self._store.update(record.id, state=UNCLAIMED, stop_reason="pool drained")
        await self._free(record.id, record.init_pid)

    async def _attach_network(self, sandbox_id: str, uid: int, init_pid: int, spec: SandboxSpec) -> None:
        if spec.network is not None and spec.network.mode == "egress":
            assert self._networks is not None  # _check_network refused egress without it
            await self._networks.attach(sandbox_id, uid, init_pid, spec.network)

    async def _claim_network(self, pooled: SandboxRecord, spec: SandboxSpec) -> None:
        """Give a pooled sandbox the network ``spec`` asks for, from the one it was spawned with."""
        had = SandboxSpec.from_json(pooled.spec).network
        if had is None or had.mode != "egress":
            assert pooled.init_pid is not None
            await self._attach_network(pooled.id, pooled.uid, pooled.init_pid, spec)
            return
        assert self._networks is not None
        if spec.network is None or spec.network.mode != "egress":
            await self._networks.cut(pooled.id)  # its namespace is left with its loopback alone
        elif spec.network != had:
            await self._networks.update(pooled.id, spec.network)

    async def _free(self, sandbox_id: str, init_pid: int | None) -> None:
        """Kill what is left of a sandbox and free its network, cgroups and files."""
        self._driver.kill(sandbox_id, init_pid)
        if self._networks is not None:
            await self._networks.detach(sandbox_id)
        await asyncio.to_thread(self._cleanup, sandbox_id)

    async def _claim(self, pooled: SandboxRecord, request: CreateRequest, tenant_id: str) -> SandboxRecord:
        """Make a pooled sandbox the one ``request`` asks for: limits, env, cwd, then its row's real values.

        The pooled sandbox's processes already sit in its cgroups, so writing the limits there (the backend's
        ``create`` again) binds them at once; rlimits, env and cwd go to the supervisor, whose future processes
        inherit them. Only what was really put in place is recorded as enforced."""
        spec = request.spec
        if request.layers:
            # Nothing runs in a pooled sandbox yet, so its files can be swapped under it: a fork costs a claim.
            paths = self.paths(pooled.id)
            await asyncio.to_thread(self._swap_storage, paths, list(request.layers), pooled.uid)
        _procs, enforced = self._driver.cgroups.create(pooled.id, spec.limits)
        nproc, fsize = rlimit_fallbacks(spec.limits, enforced)
        await self._claim_network(pooled, spec)
        guest = GuestClient(self.paths(pooled.id).socket, pooled.uid)
        await guest.request("configure", env=spec.env, cwd=spec.cwd, nproc=nproc, fsize=fsize)
        if request.labels:
            # Before the state flips to running, so that no listing sees the sandbox without its labels.
            await self._store.set_labels(pooled.id, dict(request.labels))
        now = time.time()
        claimed = await self._store.update_returning(
            pooled.id,
            state=RUNNING,
            created_at=now,
            last_active_at=now,
            spec=spec.to_json(),
            enforced=enforced,
            expires_at=now + request.timeout if request.timeout else None,
            idle_timeout=request.idle_timeout,
            tenant_id=tenant_id,
        )
        if claimed is None:
            raise SandboxNotFound(f"pooled sandbox {pooled.id} vanished from the store during its claim")
        self._last_active[pooled.id] = now
        return claimed

    def _swap_storage(self, paths: SandboxPaths, layers: list[str], uid: int) -> None:
        """Detach the sandbox's files, put them back to ``layers`` with an empty upper, attach them again."""
        self._driver.detach(paths)
        self.storage.remount(paths.root, layers, uid)
        self._driver.attach(paths)

    async def get(self, sandbox_id: str) -> SandboxRecord:
        """The sandbox, whoever's it is: for the server's own use (``authorize`` is the callers')."""
        record = await self._store.get(sandbox_id)
        if record is None or record.state in HIDDEN_STATES:
            raise SandboxNotFound(f"no sandbox with id {sandbox_id!r}")
        if sandbox_id in self._last_active:
            record.last_active_at = self._last_active[sandbox_id]
        return record

    async def authorize(
        self, who: Principal, sandbox_id: str, access: Access, doing: str | None = None
    ) -> SandboxRecord:
        """The sandbox, if ``who`` may reach it — the lookup every caller's operation on a sandbox goes through.
        Another tenant's sandbox, or one outside a token's scope, does not exist for ``who`` (SandboxNotFound,
        as for an unknown id); one it sees but may not ``access`` is Forbidden."""
        record = await self.get(sandbox_id)
        if not who.sees(record.tenant_id, record.id):
            raise SandboxNotFound(f"no sandbox with id {sandbox_id!r}")
        who.require(access, f"in sandbox {sandbox_id}", doing=doing)
        return record

    async def list(
        self,
        who: Principal,
        *,
        state: str | None = None,
        labels: dict[str, str] | None = None,
        tenant_id: str | None = None,
    ) -> list[SandboxRecord]:
        """The sandboxes ``who`` sees (the admin: every tenant's, or ``tenant_id``'s)."""
        who.require(Access.VIEW)
        if not who.admin and tenant_id not in (None, who.tenant_id):
            return []
        records = await self._records(state=state, labels=labels, tenant_id=tenant_id or _own(who))
        return [r for r in records if who.sees(r.tenant_id, r.id)]

    async def _records(
        self, *, state: str | None = None, labels: dict[str, str] | None = None, tenant_id: str | None = None
    ) -> builtins.list[SandboxRecord]:
        records = await self._store.list(state=state, labels=labels, tenant_id=tenant_id)
        for record in records:
            record.last_active_at = self._last_active.get(record.id, record.last_active_at)
        return records

    async def guest(self, who: Principal, sandbox_id: str, access: Access) -> GuestClient:
        """The supervisor of a running sandbox ``who`` may ``access``; using it counts as activity for the idle
        timeout."""
        record = await self.authorize(who, sandbox_id, access)
        if record.state != RUNNING:
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {record.state}" + _reason(record))
        self.touch(sandbox_id)
        return self.guest_of(record)

    def guest_of(self, record: SandboxRecord) -> GuestClient:
        """The supervisor of the sandbox ``record`` describes, as long as it runs (for callers that hold a
        record already and must not read it again on every use)."""
        return GuestClient(self.paths(record.id).socket, record.uid)

    def touch(self, sandbox_id: str) -> None:
        """Count this moment as activity of the sandbox, for its idle timeout (saved by the reaper)."""
        self._last_active[sandbox_id] = time.time()
        self._unsaved_activity.add(sandbox_id)

    async def ask(
        self,
        who: Principal,
        access: Access,
        sandbox_id: str,
        op: str,
        refused: Callable[[GuestError], CoveServiceError],
        **fields: Any,
    ) -> Any:
        """One plain request to the supervisor of a running sandbox ``who`` may ``access``: a refusal becomes what
        ``refused`` makes of it, a supervisor out of reach ``Unavailable`` (503)."""
        guest = await self.guest(who, sandbox_id, access)
        try:
            return await guest.request(op, **fields)
        except GuestError as exc:
            raise refused(exc) from exc
        except GuestUnavailable as exc:
            raise Unavailable(f"sandbox {sandbox_id} is not reachable") from exc

    async def update_network(self, who: Principal, sandbox_id: str, network: NetworkPolicy) -> SandboxRecord:
        """Put new allow and deny rules in force for a running sandbox, open connections included; its mode is
        fixed when it starts (its network namespace is made then)."""
        record = await self.authorize(who, sandbox_id, Access.OWN, doing="change the network")
        if record.state != RUNNING:
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {record.state}; its network cannot change")
        spec = SandboxSpec.from_json(record.spec)
        if network.mode != spec.network_mode:
            raise Conflict(
                f"sandbox {sandbox_id} runs with network mode {spec.network_mode!r}, set when it started; only the "
                "allow and deny rules of an 'egress' sandbox change at run time",
                code="network_mode_fixed",
            )
        if network.mode == "egress":
            assert self._networks is not None
            await self._networks.update(sandbox_id, network)
        await self._store.update(sandbox_id, spec=replace(spec, network=network).to_json())
        return await self.get(sandbox_id)

    def oom_kills(self, sandbox_id: str) -> int:
        return self._driver.cgroups.oom_kills(sandbox_id)

    async def set_timeout(self, who: Principal, sandbox_id: str, timeout: float | None) -> SandboxRecord:
        record = await self.authorize(who, sandbox_id, Access.OWN, doing="change the timeout")
        if record.state != RUNNING:
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {record.state}; its timeout cannot change")
        await self._store.update(sandbox_id, expires_at=time.time() + timeout if timeout else None)
        return await self.get(sandbox_id)

    async def kill(self, who: Principal, sandbox_id: str, reason: str = "killed") -> SandboxRecord:
        record = await self.authorize(who, sandbox_id, Access.OWN, doing="kill the sandbox")
        if record.state in (RUNNING, STARTING):
            self._driver.kill(sandbox_id, record.init_pid)
            await self._store.update(sandbox_id, state=STOPPED, stop_reason=reason)
            self._last_active.pop(sandbox_id, None)
            self.disk_used.pop(sandbox_id, None)
            # Once PID 1 of the namespace has exited, so has everything else in it: the cgroups can go at once.
            await asyncio.to_thread(wait_exited, record.init_pid, 5.0)
            await self._free(sandbox_id, None)
            for hook in self.on_stopped:
                await hook(sandbox_id)
        return await self.get(sandbox_id)

    async def restart(self, sandbox_id: str, layers: Sequence[str]) -> SandboxRecord:
        """Same sandbox, new life: kill every process, put its files back to ``layers`` with an empty upper,
        empty /tmp, start a fresh supervisor. Used to restore a checkpoint in place."""
        record = await self.get(sandbox_id)
        if record.state != RUNNING:
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {record.state}" + _reason(record))
        await self._store.update(sandbox_id, state=STARTING)
        for hook in self.on_restarting:
            await hook(sandbox_id)
        paths = self.paths(sandbox_id)
        spec = SandboxSpec.from_json(record.spec)
        self._driver.kill(sandbox_id, record.init_pid)
        if self._networks is not None:
            await self._networks.detach(sandbox_id)  # its namespace goes with its PID 1; the new one gets a veth
        try:
            await asyncio.to_thread(wait_exited, record.init_pid)
            await asyncio.to_thread(self._driver.detach, paths)
            await asyncio.to_thread(self.storage.remount, paths.root, [*layers], record.uid)
            for directory in paths.writable():
                await asyncio.to_thread(shutil.rmtree, directory, True)
            await asyncio.to_thread(self._driver.prepare, paths, record.uid)
            spawned = await self._driver.spawn(sandbox_id, spec, paths, record.uid)
            await asyncio.to_thread(self._driver.attach, paths)
            await self._attach_network(sandbox_id, record.uid, spawned.init_pid, spec)
        except (SandboxStartError, OSError, NetworkError) as exc:
            await self._store.update(sandbox_id, state=FAILED, stop_reason=str(exc)[:2000])
            await self._free(sandbox_id, None)
            raise SandboxStartFailed(str(exc)) from exc
        await self._store.update(
            sandbox_id, state=RUNNING, pid=spawned.pid, init_pid=spawned.init_pid, enforced=spawned.enforced
        )
        return await self.get(sandbox_id)

    def _cleanup(self, sandbox_id: str) -> None:
        """Free what a stopped sandbox held: its cgroups and its files."""
        # The cgroups can only go once every process in them has been reaped, which may take a moment after
        # the SIGKILL; keep trying until both the files and the groups are gone.
        for _ in range(250):
            self._driver.cgroups.kill_all(sandbox_id)
            groups_gone = self._driver.cgroups.remove(sandbox_id)
            # The slots first: until they are unmounted, a delete of the root would walk into the files.
            paths = self.paths(sandbox_id)
            if self._driver.release(paths) and self.storage.release(paths.root):
                shutil.rmtree(paths.root, ignore_errors=True)
            if groups_gone and not paths.root.exists():
                return
            time.sleep(0.02)
        log.warning("sandbox %s: could not free all of its cgroups and files", sandbox_id)

    async def close(self) -> None:
        if self._egress is not None:
            await self._egress.close()

    async def recover(self) -> None:
        """After a (re)start: keep sandboxes whose supervisor still answers, mark the rest as lost, then free
        whatever no running sandbox owns (``reconcile``).

        Pooled sandboxes left by the previous server are killed, not re-adopted (see ``services.pool``)."""
        for record in await self._store.list(state=POOLED):
            await self._store.update(record.id, state=UNCLAIMED, stop_reason="pool of a previous server")
        for record in await self._store.list(state=RUNNING):
            try:
                await GuestClient(self.paths(record.id).socket, record.uid).request("ping")
            except (GuestUnavailable, GuestError, OSError):
                log.warning("sandbox %s did not survive; marking it stopped", record.id)
                await self._store.update(record.id, state=STOPPED, stop_reason="lost")
        for record in await self._store.list(state=STARTING):
            await self._store.update(record.id, state=FAILED, stop_reason="server stopped during start")
        if self._egress is not None:
            live = [
                LiveSandbox(r.id, r.uid, r.init_pid, policy)
                for r in await self._store.list(state=RUNNING)
                if r.init_pid and (policy := SandboxSpec.from_json(r.spec).network) is not None
            ]
            if not await self._egress.start(live, self._settings.dns_upstreams):
                self._egress = None
        await self.reconcile()

    async def reconcile(self) -> None:
        """Free every sandbox directory, mount, cgroup and process that no running sandbox owns: what a crash,
        a failed start or an interrupted clean-up left behind (rows in every other state included)."""
        live = {record.id for record in await self._store.list(state=RUNNING)}
        on_disk = {p.name for p in self._settings.sandboxes_dir.iterdir() if _SANDBOX_ID.fullmatch(p.name)}
        # Cgroups are host-wide: only those of sandboxes this server made (they have a row) are its to free;
        # another server on the host has its own.
        grouped = {sandbox_id for sandbox_id in self._driver.cgroups.existing() if await self._store.get(sandbox_id)}
        for sandbox_id in sorted((on_disk | grouped) - live):
            record = await self._store.get(sandbox_id)
            init_pid = record.init_pid if record is not None else None
            if init_pid and not _is_sandbox_process(init_pid, sandbox_id):
                init_pid = None  # not this sandbox's supervisor (any more): that pid may be anyone's now
            self._driver.kill(sandbox_id, init_pid)
            await asyncio.to_thread(wait_exited, init_pid, 5.0)
            await self._free(sandbox_id, None)
            log.info("freed what sandbox %s left behind", sandbox_id)

    async def enforce_timeouts(self) -> None:
        """One pass of the reaper: absolute and idle timeouts, the disk quota watchdog, and dead sandboxes."""
        now = time.time()
        check_disk = now - self._last_disk_check >= DISK_CHECK_INTERVAL
        if check_disk:
            self._last_disk_check = now
        quotas: dict[str, int] = {}  # sandbox -> its disk quota, MiB: those the watchdog looks at in this pass
        for record in await self._records(state=RUNNING):
            if record.expires_at is not None and now >= record.expires_at:
                await self.kill(SYSTEM, record.id, reason="timeout")
            elif record.idle_timeout and now - record.last_active_at >= record.idle_timeout:
                await self.kill(SYSTEM, record.id, reason="idle_timeout")
            elif record.init_pid and not Path(f"/proc/{record.init_pid}").exists():
                await self.kill(SYSTEM, record.id, reason="exited")
            elif check_disk and (disk_mb := SandboxSpec.from_json(record.spec).limits.disk_mb):
                quotas[record.id] = disk_mb
        if quotas:
            roots = {sandbox_id: self.paths(sandbox_id).root for sandbox_id in quotas}
            usages = await _disk_usages(list(roots.values()), self.storage)
            for sandbox_id, disk_mb in quotas.items():
                walked = usages.get(roots[sandbox_id])
                if walked is None:
                    continue  # killed since the listing: its files are gone
                used = walked + await asyncio.to_thread(self._held_bytes, sandbox_id)
                self.disk_used[sandbox_id] = used
                if used > (disk_mb + DISK_TOLERANCE_MB) * 1024 * 1024:
                    await self.kill(SYSTEM, sandbox_id, reason="disk_limit")
        unsaved, self._unsaved_activity = self._unsaved_activity, set()
        for sandbox_id in unsaved:
            if sandbox_id in self._last_active:
                await self._store.update(sandbox_id, last_active_at=self._last_active[sandbox_id])

    def _held_bytes(self, sandbox_id: str) -> int:
        """What the sandbox's processes hold in files they deleted, on its own filesystems (not /dev/shm)."""
        pids = self._driver.cgroups.pids(sandbox_id)
        if not pids:
            return 0
        paths = self.paths(sandbox_id)
        devices = set()
        for path in (paths.root, paths.workspace, paths.home):
            with contextlib.suppress(OSError):
                devices.add(path.stat().st_dev)
        return deleted_but_open(pids, devices)

    async def run_reaper(self) -> None:
        while True:
            try:
                await self.enforce_timeouts()
            except Exception:
                log.exception("reaper pass failed")
            await asyncio.sleep(self._settings.reaper_interval)


def _is_sandbox_process(pid: int, sandbox_id: str) -> bool:
    """Whether ``pid`` runs in the sandbox ``sandbox_id`` (its environment names it)."""
    needle = f"COVE_SANDBOX_ID={sandbox_id}".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return needle in environ.read(64 * 1024)
    except OSError:
        return False


def _own(who: Principal) -> str | None:
    """The tenant whose rows ``who`` reads: its own, or every tenant's for the admin."""
    return None if who.admin else who.tenant_id


def _reason(record: SandboxRecord) -> str:
    return f" ({record.stop_reason})" if record.stop_reason else ""
