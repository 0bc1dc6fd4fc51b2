"""A sandbox's writable state as a btrfs subvolume; checkpoints and forks as snapshots of it.

Chosen by ``storage.open_storage`` when ``$COVE_HOME`` is on btrfs. Per sandbox, under its root::

    subvolume/  the sandbox's files (``workspace/``, ``home/``), a writable subvolume of its own
    merged/     an idmapped, writable bind mount of ``subvolume/``: what bwrap binds into the sandbox
    btrfs.json  from when its writes count for its next checkpoint (a transaction) and its disk quota (a time)

and each checkpoint is one read-only snapshot under ``$COVE_HOME/layers/<id>``.

Why snapshots rather than overlay layers: a snapshot costs the same whatever the subvolume holds and whatever
changed since the last one (btrfs shares every block until one side writes it), so a checkpoint needs no scan
and no copy, and a checkpoint is never a stack: its chain is always one snapshot, never squashed. A fork or a
restore is a writable snapshot of that snapshot, independent of it from then on in both directions — the
checkpoint can be deleted at once even while forks of it run, and btrfs frees each block when its last user is
gone. That is why ``in_use`` is always empty: no running sandbox stands on a layer.

Why files are owned on disk by ``LAYER_UID`` and shown through an idmapped mount: every sandbox runs as its own
uid, and a snapshot keeps the owners it holds, so a fork (another uid) could not change what it inherited
without a ``chown`` of every file, which costs what the tree weighs. Instead the subvolume's files all belong to
the neutral ``LAYER_UID``, and each sandbox sees its subvolume through a bind mount that maps ``LAYER_UID`` to its
own uid; what it writes through it lands on disk as ``LAYER_UID`` again (the kernel maps both ways), so every
snapshot can be handed to any other uid as it is. Nobody else can create files through that mount (root's uid is
not in the map), which is fine: the server writes into a sandbox only through its supervisor.

Why the ioctls and not the ``btrfs`` command: see ``_btrfs_ioctl``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cove.runtime import _btrfs_ioctl as ioctl
from cove.runtime import safe_open
from cove.runtime.layers import BASE, LAYER_UID, STATE_DIRS, LayerStore
from cove.runtime.mounts import bind_idmapped, detach
from cove.runtime.storage import BTRFS, Located, SealedChain

SUBVOLUME = "subvolume"
STATE = "btrfs.json"
# A read-only snapshot of the subvolume taken when the server began keeping what the sandbox's turns change.
TURN_BASE = "turn-base"
# ctimes come from the kernel's coarse clock, up to a tick behind (as in ``delta``): count a little early.
_CLOCK_SLACK_NS = 50_000_000


@dataclass
class _State:
    since: int = 0  # the transaction after which writes belong to the next checkpoint
    own_since_ns: int = 0  # when the subvolume was made: entries changed after are the sandbox's own (disk quota)


class SnapshotLayers(LayerStore):
    """The layer store when layers are read-only snapshots: made by the snapshot, freed by deleting it."""

    def allocate(self) -> str:
        return secrets.token_hex(5)  # the snapshot creates the directory

    def remove(self, layer_id: str) -> None:
        if layer_id == BASE:
            return
        path = self.path(layer_id)
        if ioctl.is_subvolume(path):
            ioctl.delete_subvolume(path)
        else:  # a directory left by an interrupted seal of another driver, or a crash
            shutil.rmtree(path, ignore_errors=True)

    def size(self, layer_id: str) -> int:
        return ioctl.bytes_written_after(self.path(layer_id), 0)


def usable(directory: Path, other: Path) -> bool:
    """Whether subvolumes can be made in ``directory`` and snapshotted into ``other`` (same filesystem)."""
    probe = directory / f".probe-{secrets.token_hex(4)}"
    copy = other / f".probe-{secrets.token_hex(4)}"
    try:
        ioctl.create_subvolume(probe)
        ioctl.snapshot(probe, copy, read_only=True)
    except OSError:
        return False
    finally:
        for path in (copy, probe):
            with contextlib.suppress(OSError):
                ioctl.delete_subvolume(path)
    return True


class BtrfsStorage:
    name = BTRFS
    reads_live_files = False  # a seal is one snapshot ioctl: nothing is read by path

    def __init__(self, layers: SnapshotLayers) -> None:
        self.layers: LayerStore = layers

    @staticmethod
    def subvolume(root: Path) -> Path:
        return root / SUBVOLUME

    @staticmethod
    def merged(root: Path) -> Path:
        return root / "merged"

    def mount(self, root: Path, chain: list[str], uid: int) -> None:
        """A writable snapshot of the chain's (only) layer, or an empty subvolume: constant time either way."""
        subvolume, merged = self.subvolume(root), self.merged(root)
        root.mkdir(parents=True, exist_ok=True)
        merged.mkdir(exist_ok=True)
        if chain:
            started_ns = time.time_ns() - _CLOCK_SLACK_NS
            ioctl.snapshot(self.layers.path(chain[-1]), subvolume, read_only=False)
            # Blocks written before the snapshot's transaction are inherited, not for the next checkpoint.
            state = _State(since=ioctl.created_in(subvolume), own_since_ns=started_ns)
        else:
            ioctl.create_subvolume(subvolume)
            os.chown(subvolume, LAYER_UID, LAYER_UID)
            for name in STATE_DIRS:
                (subvolume / name).mkdir()
                os.chown(subvolume / name, LAYER_UID, LAYER_UID)
                (subvolume / name).chmod(0o755)
            state = _State()  # everything in a new subvolume is new, even what its first transaction holds
        _write_state(root, state)
        bind_idmapped(subvolume, merged, disk_uid=LAYER_UID, uid=uid, read_only=False)

    def remount(self, root: Path, chain: list[str], uid: int) -> None:
        """Put the sandbox's files back to ``chain``; its processes must be gone. Deleting the old subvolume
        returns at once (btrfs frees its blocks in the background), so nothing waits for it."""
        detach(self.merged(root))
        for subvolume in (self.subvolume(root), root / TURN_BASE):
            with contextlib.suppress(FileNotFoundError):
                _delete(subvolume)
        self.mount(root, chain, uid)

    def release(self, root: Path) -> bool:
        """Unmount and delete the subvolume; true when nothing of it is left, so ``root`` may be removed."""
        with contextlib.suppress(OSError):
            detach(self.merged(root))
        for subvolume in (self.subvolume(root), root / TURN_BASE):
            with contextlib.suppress(OSError):
                _delete(subvolume)
        return not os.path.ismount(self.merged(root)) and not self.subvolume(root).exists()

    def seal(self, root: Path, layer_id: str, mapped: set[bytes] | None) -> SealedChain:
        """A read-only snapshot of the subvolume (the processes are frozen meanwhile): the checkpoint is that
        snapshot alone, whatever changed (so ``mapped`` is not needed). Its size is the file data written since
        the previous checkpoint, found from the blocks' transaction ids (the kernel skips unchanged parts of the
        tree, so this too costs what changed)."""
        layer = self.layers.path(layer_id)
        ioctl.snapshot(self.subvolume(root), layer, read_only=True)
        size = ioctl.bytes_written_after(layer, _read_state(root).since)
        return SealedChain(chain=[layer_id], size_bytes=size)

    def squash(self, chain: list[str], into: str) -> None:
        raise NotImplementedError("btrfs checkpoints are single snapshots; there is never a chain to squash")

    def commit(self, root: Path, chain: list[str]) -> None:
        """The next checkpoint counts its size from this one's transaction."""
        state = _read_state(root)
        state.since = ioctl.created_in(self.layers.path(chain[-1]))
        _write_state(root, state)

    def discard(self, root: Path) -> None:
        """Nothing to undo: an unrecorded snapshot is freed by the collector like any unused layer."""

    def in_use(self, roots: list[Path]) -> set[str]:
        return set()

    def own_bytes(self, root: Path) -> int:
        """Disk held by the entries the sandbox made or changed since its subvolume was made — not what it
        inherited untouched from the checkpoint it started from: the part of its disk quota a walk of its root
        cannot see (a subvolume is a filesystem of its own to ``os.path.ismount``).

        Found by ctime, which the kernel sets on every change and the sandbox cannot forge; an inherited file
        that was changed counts whole, as overlayfs's copy-up would. Block counts include data not yet written
        back, which the extents' transaction ids (what ``seal`` counts) would miss until btrfs commits."""
        since = _read_state(root).own_since_ns
        total = 0
        for directory, dirs, names in os.walk(self.subvolume(root)):
            for name in [*dirs, *names]:
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(directory, name))
                    if st.st_ctime_ns >= since:
                        total += st.st_blocks * 512
        return total

    def workspace_base(self, root: Path, uid: int, fresh: bool) -> SnapshotBase:
        """A read-only snapshot of the subvolume, taken now (``fresh``) or when the base was first asked for:
        constant time, and it never changes, so nothing needs copying."""
        base = root / TURN_BASE
        if fresh:
            with contextlib.suppress(FileNotFoundError):
                _delete(base)
            ioctl.snapshot(self.subvolume(root), base, read_only=True)
        return SnapshotBase(base / "workspace")


class SnapshotBase:
    """The workspace as a read-only snapshot holds it (its files owned by ``LAYER_UID`` on disk)."""

    def __init__(self, workspace: Path) -> None:
        self._fd = safe_open.open_root(workspace)

    def kept_now(self) -> Iterator[tuple[str, Located | None]]:
        return iter(())

    def locate(self, path: str) -> Located | None:
        return Located(self._fd, path, LAYER_UID)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _delete(subvolume: Path) -> None:
    """Delete a subvolume, and first any the sandbox made inside it (btrfs lets any user make one, and refuses
    to delete a subvolume holding another). Those are not part of checkpoints: a snapshot shows them empty."""
    try:
        ioctl.delete_subvolume(subvolume)
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise
        for directory, dirs, _names in os.walk(subvolume):
            for name in list(dirs):
                if ioctl.is_subvolume(Path(directory, name)):
                    dirs.remove(name)
                    _delete(Path(directory, name))
        ioctl.delete_subvolume(subvolume)


def _write_state(root: Path, state: _State) -> None:
    temporary = root / f"{STATE}.tmp"
    temporary.write_text(json.dumps(asdict(state)))
    temporary.replace(root / STATE)


def _read_state(root: Path) -> _State:
    try:
        return _State(**json.loads((root / STATE).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return _State()
