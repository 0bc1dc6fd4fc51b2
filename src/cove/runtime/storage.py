"""A sandbox's writable state (``/workspace`` and ``/home/user``): the storage contract, the driver chosen for this
host, and the overlayfs driver (the btrfs one is ``runtime.btrfs``).

Whatever the driver, after ``mount(root, chain, uid)`` the sandbox's files are at ``root/merged/workspace`` and
``root/merged/home`` as its uid sees them. The overlayfs driver makes them an overlay mounted on the host.

The server (root) mounts it, and binds ``merged/workspace`` and ``merged/home`` into the sandbox through its
slots (``SandboxPaths.slots``). Host mounts outlive the server process, so a restarted server finds every
sandbox's files where they were.

Per sandbox, under its root::

    merged/  the overlay: lowers = its chain of layers over the empty base, upper = fs/upper
    fs/      upper, work, and the layer state: ``mounted`` (chain under the overlay), ``head`` (chain of its
             latest checkpoint), and the seal's manifest and marker (see ``delta``)

and ``$COVE_HOME/views/<sandbox id>``, an idmapped read-only view of the layers in which their files appear owned
by the sandbox's uid. It lives outside the sandbox's root because a bind mount of the same filesystem is
invisible to ``os.path.ismount``: inside, a disk-usage walk or a recursive delete would wander into every layer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cove.runtime import delta, safe_open
from cove.runtime.changes import ChangeWatch
from cove.runtime.layers import BASE, LAYER_UID, LayerStore
from cove.runtime.mounts import bind_idmapped, detach, mount_overlay
from cove.runtime.workspace_watch import walk

log = logging.getLogger("cove.storage")

MOUNTED = "mounted"
HEAD = "head"
BTRFS = "btrfs"
OVERLAYFS = "overlayfs"
DRIVER_RECORD = ".driver"


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding ``path``, from the longest matching mount point."""
    resolved, best, fstype = str(path.resolve()), "", ""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        mount_point = fields[4]
        separator = fields.index("-")
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, fstype = mount_point, fields[separator + 1]
    return fstype


@dataclass(frozen=True)
class SealedChain:
    """What a seal made of a sandbox's state: the new checkpoint's chain of layers (bottom first; the previous
    one when nothing changed) and the disk that checkpoint added."""

    chain: list[str]
    size_bytes: int


@dataclass(frozen=True)
class Located:
    """Where one path's content lies on the host: beneath the open directory ``root``, owned by ``uid`` (read
    through ``safe_open``, like everything a sandbox wrote)."""

    root: int
    path: str
    uid: int


class WorkspaceBase(Protocol):
    """A sandbox's ``/workspace`` as it was when the server began keeping what its turns change
    (``runtime.turn_store``): the "before" of every file a turn is the first to change."""

    def kept_now(self) -> Iterator[tuple[str, Located | None]]:
        """The part of the base that lies where it can still change, and must be copied at once: each path, and
        where to read it (None: nothing is there). Nothing else of the base lies beneath a path named here."""
        ...

    def locate(self, path: str) -> Located | None:
        """Where the base's ``path`` lies (a file, a link or a directory), for a path ``kept_now`` neither named
        nor lies beneath; None: nothing is there."""
        ...

    def close(self) -> None: ...


class Storage(Protocol):
    """What the services use of a storage driver; ``root`` is a sandbox's directory (``SandboxPaths.root``)."""

    name: str
    layers: LayerStore
    # Whether a seal reads the sandbox's files by path (and so must never run while its processes can move them).
    reads_live_files: bool

    def mount(self, root: Path, chain: list[str], uid: int) -> None: ...
    def remount(self, root: Path, chain: list[str], uid: int) -> None: ...
    def release(self, root: Path) -> bool: ...
    def seal(self, root: Path, layer_id: str, mapped: set[bytes] | None) -> SealedChain: ...
    def squash(self, chain: list[str], into: str) -> None: ...
    def commit(self, root: Path, chain: list[str]) -> None: ...
    def discard(self, root: Path) -> None: ...
    def in_use(self, roots: list[Path]) -> set[str]: ...
    def own_bytes(self, root: Path) -> int: ...
    def workspace_base(self, root: Path, uid: int, fresh: bool) -> WorkspaceBase: ...


def open_storage(layers: LayerStore, views: Path, scratch: Path, sandboxes: Path) -> Storage:
    """The storage driver for this host, chosen by probing where the layers and the sandboxes live.

    btrfs where both are on one btrfs filesystem and a subvolume made among the layers can be snapshotted among
    the sandboxes (snapshots cost the same whatever the size or the change); overlayfs everywhere else (it needs
    only xattrs and d_type, which ext4, xfs and btrfs have). The choice is recorded in the layer store and kept
    for its life: one driver's checkpoints mean nothing to the other (a home whose layers predate the record was
    written by overlayfs).
    """
    from cove.runtime import btrfs  # it builds on this module's contract

    record = layers.root / DRIVER_RECORD
    try:
        chosen = record.read_text().strip()
    except FileNotFoundError:
        chosen = _probe(layers, sandboxes)
        record.write_text(chosen + "\n")
    log.info("storage driver: %s (layers in %s)", chosen, layers.root)
    if chosen == BTRFS:
        return btrfs.BtrfsStorage(btrfs.SnapshotLayers(layers.root))
    if chosen != OVERLAYFS:
        raise ValueError(f"{record} names an unknown storage driver: {chosen!r}")
    return OverlayStorage(layers, views, scratch)


def _probe(layers: LayerStore, sandboxes: Path) -> str:
    from cove.runtime import btrfs

    fstype = filesystem_of(layers.root)
    if layers.on_disk() or fstype != BTRFS:
        return OVERLAYFS
    if btrfs.usable(layers.root, sandboxes):
        return BTRFS
    log.warning("%s is on btrfs but snapshots fail there (into %s): using overlayfs", layers.root, sandboxes)
    return OVERLAYFS


class OverlayStorage:
    name = OVERLAYFS
    reads_live_files = True

    def __init__(self, layers: LayerStore, views: Path, scratch: Path) -> None:
        self.layers = layers
        self._views = views
        self._scratch = scratch
        self._watches: dict[Path, ChangeWatch] = {}  # per sandbox root; see runtime.changes

    @staticmethod
    def fs(root: Path) -> Path:
        return root / "fs"

    @staticmethod
    def merged(root: Path) -> Path:
        return root / "merged"

    def lower(self, root: Path) -> Path:
        return self._views / root.name

    def mount(self, root: Path, chain: list[str], uid: int) -> None:
        """Mount a fresh upper over ``chain`` (bottom first): constant time, whatever the layers hold."""
        fs, merged, lower = self.fs(root), self.merged(root), self.lower(root)
        for directory in (fs / "upper", fs / "work", merged, lower):
            directory.mkdir(parents=True, exist_ok=True)
        # Recorded before mounting, so the collector never frees a layer this sandbox is about to use.
        _write_chain(fs / MOUNTED, chain)
        _write_chain(fs / HEAD, chain)
        if not (lower / BASE).exists():  # not yet mounted (ismount cannot tell a same-filesystem bind)
            bind_idmapped(self.layers.root, lower, disk_uid=LAYER_UID, uid=uid)
        lowers = [lower / layer for layer in reversed(chain)] + [lower / BASE]
        mount_overlay(lowers, fs / "upper", fs / "work", merged)

    def remount(self, root: Path, chain: list[str], uid: int) -> None:
        """Put the sandbox's files back to ``chain`` with an empty upper; its processes must be gone."""
        self._unwatch(root)
        detach(self.merged(root))
        trash = root / f"fs.old-{secrets.token_hex(4)}"
        with contextlib.suppress(FileNotFoundError):
            self.fs(root).rename(trash)
        # Removing the old upper can take a while (dirty pages, big trees); nobody needs to wait for it.
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=True).start()
        self.mount(root, chain, uid)

    def release(self, root: Path) -> bool:
        """Unmount (lazily); true when nothing is mounted under ``root`` any more, so it may be deleted."""
        self._unwatch(root)
        for target in (self.merged(root), self.lower(root)):
            with contextlib.suppress(OSError):
                detach(target)
        with contextlib.suppress(OSError):
            self.lower(root).rmdir()
        return not os.path.ismount(self.merged(root)) and not self.lower(root).exists()

    def seal(self, root: Path, layer_id: str, mapped: set[bytes] | None) -> SealedChain:
        """Copy what changed since the last checkpoint into the layer; the chain grows by it, if anything did.
        ``mapped``: the files the sandbox has mapped for writing, as ``ChangeWatch.changed`` takes them."""
        upper = self.fs(root) / "upper"
        watch = self._watches.setdefault(root, ChangeWatch(upper))
        sealed = delta.seal(upper, self.layers.path(layer_id), self.fs(root), watch.changed(mapped))
        if sealed.directories is not None:
            watch.rewatch(sealed.directories)
        chain = self.head(root)
        return SealedChain(chain=[*chain, layer_id] if sealed.entries else chain, size_bytes=sealed.size_bytes)

    def squash(self, chain: list[str], into: str) -> None:
        self.layers.squash(chain, into, self._scratch)

    def commit(self, root: Path, chain: list[str]) -> None:
        delta.commit(self.fs(root))
        _write_chain(self.fs(root) / HEAD, chain)

    def discard(self, root: Path) -> None:
        delta.discard(self.fs(root))
        if root in self._watches:
            self._watches[root].invalidate()

    def _unwatch(self, root: Path) -> None:
        watch = self._watches.pop(root, None)
        if watch is not None:
            watch.close()

    def head(self, root: Path) -> list[str]:
        return _read_chain(self.fs(root) / HEAD)

    def in_use(self, roots: list[Path]) -> set[str]:
        """Layers the given sandboxes stand on or will build their next checkpoint on."""
        used: set[str] = set()
        for root in roots:
            used.update(_read_chain(self.fs(root) / MOUNTED), _read_chain(self.fs(root) / HEAD))
        return used

    def own_bytes(self, root: Path) -> int:
        """Nothing beyond what a walk of ``root`` finds: the upper lies inside it, the layers outside."""
        return 0

    def workspace_base(self, root: Path, uid: int, fresh: bool) -> WorkspaceBase:
        """The layers under the overlay are immutable: they serve the base for as long as the sandbox stands on
        them. Only what the upper holds when the base is taken can still change, so that is what is kept now."""
        lowers = [self.layers.path(layer) / "workspace" for layer in reversed(_read_chain(self.fs(root) / MOUNTED))]
        return OverlayBase(self.fs(root) / "upper" / "workspace", uid, [*lowers, self.layers.path(BASE) / "workspace"])


class OverlayBase:
    """An overlay's workspace at the moment ``kept_now`` is walked: its upper then, over its lower layers.

    In the upper, a file (or link) is the base's content there and hides any directory of the lowers under the
    same name; a whiteout (a 0/0 character device) says the lowers' entry was deleted; an opaque directory hides
    what the lowers hold under it. Lower layers are looked up top first with the same rules."""

    def __init__(self, upper: Path, uid: int, lowers: list[Path]) -> None:
        self._upper = upper
        self._uid = uid
        self._lowers = lowers
        self._fds: dict[Path, int] = {}

    def _fd(self, directory: Path) -> int:
        if directory not in self._fds:
            self._fds[directory] = safe_open.open_root(directory)
        return self._fds[directory]

    def kept_now(self) -> Iterator[tuple[str, Located | None]]:
        try:
            upper = safe_open.open_directory(self._fd(self._upper.parent), self._upper.name, self._uid)
        except FileNotFoundError:
            return  # nothing written yet: the overlay makes the upper's workspace on its first write
        opaque: list[str] = []  # directories met since the last entry that hide the lowers beneath them

        def note(fd: int, path: str) -> None:
            if path and delta.is_opaque(Path(safe_open.fd_path(fd))):
                opaque.append(path)

        parent = self._fd(self._upper.parent)
        with safe_open.opened(upper):
            for path, seen in walk(upper, self._uid, on_directory=note):
                while opaque:
                    yield opaque.pop(), None
                yield path, None if seen.kind == "w" else Located(parent, f"{self._upper.name}/{path}", self._uid)
        while opaque:
            yield opaque.pop(), None

    def locate(self, path: str) -> Located | None:
        """The lowers are the server's own and never change: a walk by path, each directory checked before it
        is entered (no link is ever followed), finds the top layer that has ``path``, if none hides it."""
        parts = path.split("/")
        for layer in self._lowers:
            here, opaque = layer, False
            for depth, part in enumerate(parts):
                here = here / part
                try:
                    st = here.lstat()
                except OSError:
                    break  # not in this layer
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return None  # deleted at this layer
                if depth == len(parts) - 1:
                    return Located(self._fd(layer), path, LAYER_UID)
                if not stat.S_ISDIR(st.st_mode):
                    return None  # a file where the path needs a directory
                opaque = opaque or delta.is_opaque(here)
            if opaque:
                return None  # an opaque directory of this layer hides the ones below
        return None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _write_chain(path: Path, chain: list[str]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(chain))
    temporary.replace(path)


def _read_chain(path: Path) -> list[str]:
    try:
        chain: list[str] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return chain
