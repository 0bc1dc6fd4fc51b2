"""CheckpointService: checkpoints of a sandbox's files, forks of them, restores in place, and freeing layers.

A checkpoint is a chain of immutable layers (``runtime.layers``). Taking one freezes the sandbox's processes,
seals its state and thaws: with overlayfs the seal copies what changed since the previous checkpoint as a new
layer on top of the previous chain (the sandbox is paused for as long as the change takes to copy); with btrfs it
is a read-only snapshot, a chain of one (constant time). A fork is a new sandbox standing on the chain (an overlay
over it, or a writable snapshot of it): constant time either way. The storage driver decides what the chain is.

Layers are reference-counted, not guarded: deleting a checkpoint always succeeds, and a layer is freed once no
checkpoint's chain, no sandbox's overlay and no sandbox's next checkpoint needs it any more.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from cove.runtime.bwrap import STORAGE_IN_SANDBOX
from cove.runtime.cgroups import Cgroups
from cove.runtime.changes import mapped_for_writing
from cove.runtime.storage import SealedChain
from cove.services.errors import CheckpointNotFound, CheckpointUnavailable, QuotaExceeded, SandboxNotRunning
from cove.services.principal import SYSTEM, Access, Principal
from cove.services.quotas import QuotaLocks, admit
from cove.services.sandboxes import RUNNING, STARTING, CreateRequest, SandboxService
from cove.store.checkpoints import CheckpointRecord, CheckpointStore
from cove.store.sandboxes import SandboxRecord

log = logging.getLogger("cove.checkpoints")

# For ``mapped_for_writing``: where the storage's directories appear in a sandbox, and their names in the upper.
SANDBOX_BINDS = {inside.encode(): name.encode() for inside, name in STORAGE_IN_SANDBOX.items()}
# Deeper chains are squashed into one layer: overlay lookups cost per layer, and the kernel caps the stack.
MAX_DEPTH = 16
MIB = 1024 * 1024


class CheckpointService:
    def __init__(self, store: CheckpointStore, sandboxes: SandboxService, cgroups: Cgroups) -> None:
        self._store = store
        self._sandboxes = sandboxes
        self._storage = sandboxes.storage
        self._cgroups = cgroups
        self._per_sandbox: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Layers being written or about to be mounted: not yet recorded anywhere the collector looks.
        self._pinned: Counter[str] = Counter()
        self._collecting = asyncio.Lock()
        self._quota_locks = QuotaLocks()
        sandboxes.on_stopped.append(self._sandbox_stopped)

    async def create(self, who: Principal, sandbox_id: str, name: str | None = None) -> CheckpointRecord:
        """Checkpoint a running sandbox. Within its tenant's ``checkpoint_mb``: refused before the seal when the
        tenant has no room left, and taken back after it when this checkpoint passed the quota (what a seal adds
        is known only once it is done)."""
        record = await self._running(who, sandbox_id, Access.OWN)
        root = self._sandboxes.paths(record.id).root
        async with self._quota_locks.hold(who), self._per_sandbox[sandbox_id]:
            quota = who.quotas.checkpoint_mb if who.quotas is not None else None
            used = await self.usage(who.tenant_id) if quota is not None else 0
            admit("checkpoint_mb", quota, used / MIB, 0, f"this tenant's checkpoints take {used / MIB:.1f} MiB")
            layer = self._storage.layers.allocate()
            with self._pin([layer]):
                try:
                    checkpoint = await self._seal(record, root, layer, name)
                    await self._store.insert(checkpoint)
                    await asyncio.to_thread(self._storage.commit, root, checkpoint.layers)
                except BaseException:
                    await asyncio.to_thread(self._storage.discard, root)
                    raise
            added = checkpoint.size_bytes / MIB
            try:
                detail = f"this tenant's checkpoints take {used / MIB:.1f} MiB, and this one {added:.1f} (not kept)"
                admit("checkpoint_mb", quota, used / MIB, added, detail)
            except QuotaExceeded:
                await self._store.delete(checkpoint.id)
                await self.collect()
                raise
        await self.collect()
        return checkpoint

    async def usage(self, tenant_id: str) -> int:
        """What ``tenant_id``'s checkpoints add to the disk, in bytes."""
        return sum(c.size_bytes for c in await self._store.list(tenant_id=tenant_id))

    async def _seal(self, sandbox: SandboxRecord, root: Path, layer: str, name: str | None) -> CheckpointRecord:
        sandbox_id = sandbox.id
        frozen = await asyncio.to_thread(self._cgroups.freeze, sandbox_id)
        if not frozen and self._storage.reads_live_files:
            # A seal that copies files (overlayfs) from a sandbox whose processes still run would race them: they
            # could swap a directory for a link to a host path between the listing and the copy.
            raise CheckpointUnavailable(
                f"sandbox {sandbox_id} could not be frozen (no cgroup freezer here, or a process would not stop); "
                "no checkpoint was taken"
            )
        if not frozen:
            log.warning("sandbox %s cannot be frozen here: checkpoint is not a point-in-time view", sandbox_id)
        try:
            sealed = await asyncio.to_thread(self._seal_frozen, sandbox_id, root, layer, frozen)
        finally:
            if frozen:
                await asyncio.to_thread(self._cgroups.thaw, sandbox_id)
        chain, size = sealed.chain, sealed.size_bytes
        if len(chain) > MAX_DEPTH:  # overlayfs only: a btrfs checkpoint is one snapshot
            squashed = self._storage.layers.allocate()
            with self._pin([squashed]):
                await asyncio.to_thread(self._storage.squash, chain, squashed)
                size = await asyncio.to_thread(self._storage.layers.size, squashed)
                chain = [squashed]
                return self._record(sandbox, name, size, chain)
        return self._record(sandbox, name, size, chain)

    def _seal_frozen(self, sandbox_id: str, root: Path, layer: str, frozen: bool) -> SealedChain:
        """The seal proper. The mappings are read here, with the processes stopped, so none is missed."""
        pids = self._cgroups.pids(sandbox_id) if frozen else None
        mapped = mapped_for_writing(pids, SANDBOX_BINDS) if pids is not None else None
        return self._storage.seal(root, layer, mapped)

    @staticmethod
    def _record(sandbox: SandboxRecord, name: str | None, size: int, chain: list[str]) -> CheckpointRecord:
        return CheckpointRecord(
            id="ckpt_" + secrets.token_hex(8),
            sandbox_id=sandbox.id,
            name=name,
            created_at=time.time(),
            size_bytes=size,
            layers=chain,
            tenant_id=sandbox.tenant_id,
        )

    async def get(self, who: Principal, checkpoint_id: str, access: Access = Access.READ) -> CheckpointRecord:
        """The checkpoint, if ``who`` may reach it: another tenant's, or one of a sandbox outside a token's scope,
        does not exist for ``who``; one it sees but may not ``access`` is Forbidden."""
        record = await self._store.get(checkpoint_id)
        if record is None or not who.sees(record.tenant_id, record.sandbox_id):
            raise CheckpointNotFound(f"no checkpoint with id {checkpoint_id!r}")
        who.require(access, f"with checkpoint {checkpoint_id}")
        return record

    async def list(self, who: Principal, sandbox_id: str) -> list[CheckpointRecord]:
        await self._sandboxes.authorize(who, sandbox_id, Access.READ)
        return await self._store.list(sandbox_id)

    async def delete(self, who: Principal, checkpoint_id: str) -> CheckpointRecord:
        """Always succeeds: forks keep standing on the layers they use, which are freed after the last one."""
        record = await self.get(who, checkpoint_id, Access.OWN)
        await self._store.delete(checkpoint_id)
        await self.collect()
        return record

    async def fork(self, who: Principal, checkpoint_id: str, request: CreateRequest) -> SandboxRecord:
        """A new sandbox of ``who``'s tenant with the checkpoint's files; its own writes go to its own upper."""
        async with self._collecting:
            checkpoint = await self.get(who, checkpoint_id, Access.OWN)
            pin = self._pin(checkpoint.layers)
        with pin:
            return await self._sandboxes.create(who, replace(request, layers=tuple(checkpoint.layers)))

    async def restore(self, who: Principal, sandbox_id: str, checkpoint_id: str) -> SandboxRecord:
        """Put the sandbox's files back to the checkpoint's; its processes are killed and not restored."""
        await self._running(who, sandbox_id, Access.OWN)
        async with self._per_sandbox[sandbox_id]:
            async with self._collecting:
                checkpoint = await self.get(who, checkpoint_id, Access.OWN)
                pin = self._pin(checkpoint.layers)
            with pin:
                record = await self._sandboxes.restart(sandbox_id, checkpoint.layers)
        await self.collect()
        return record

    async def collect(self) -> Sequence[str]:
        """Free the layers nothing uses any more; returns their ids."""
        async with self._collecting:
            on_disk = await asyncio.to_thread(self._storage.layers.on_disk)
            # Pins first: a layer unpinned after this read was recorded in the store before being unpinned.
            used = set(self._pinned)
            used.update(layer for checkpoint in await self._store.list() for layer in checkpoint.layers)
            live = [
                self._sandboxes.paths(s.id).root
                for s in await self._sandboxes.list(SYSTEM)
                if s.state in (RUNNING, STARTING)
            ]
            used |= await asyncio.to_thread(self._storage.in_use, live)
            unused = sorted(on_disk - used)
            for layer in unused:
                await asyncio.to_thread(self._storage.layers.remove, layer)
        return unused

    async def _sandbox_stopped(self, _sandbox_id: str) -> None:
        await self.collect()

    async def _running(self, who: Principal, sandbox_id: str, access: Access) -> SandboxRecord:
        record = await self._sandboxes.authorize(who, sandbox_id, access)
        if record.state != RUNNING:
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {record.state}; only a running sandbox has files")
        return record

    def _pin(self, layers: Iterable[str]) -> _Pin:
        return _Pin(self._pinned, list(layers))


class _Pin:
    """Holds layers against the collector from the moment they are chosen until they are recorded."""

    def __init__(self, pinned: Counter[str], layers: list[str]) -> None:
        self._pinned = pinned
        self._layers = layers
        pinned.update(layers)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        self._pinned.subtract(self._layers)
        for layer in self._layers:
            if self._pinned[layer] <= 0:
                del self._pinned[layer]
