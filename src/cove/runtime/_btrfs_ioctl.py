"""The few btrfs ioctls the snapshot storage needs, called directly (``fcntl.ioctl``) rather than through the
``btrfs`` command: each is one system call, and starting the command costs more than the work itself. Measured
here (loopback btrfs, medians of 15): snapshot 1.1 ms by ioctl, 2.7 ms by ``btrfs subvolume snapshot``; delete
0.03 ms against 1.4 ms; create 0.04 ms against 1.3 ms. The command also has no way to ask which transaction a
subvolume was made in or what was written since, which checkpoint sizes need (``TREE_SEARCH``).

Structures are packed by hand with ``struct``; their layouts are the kernel's UAPI (``linux/btrfs.h``,
``linux/btrfs_tree.h``), which is stable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Iterator
from pathlib import Path

_MAGIC = 0x94
_ARGS_SIZE = 4096  # btrfs_ioctl_vol_args, _v2, search_args and ino_lookup_args are all one page
_SUBVOL_RDONLY = 1 << 1
_FIRST_FREE_OBJECTID = 256  # the inode number of every subvolume's top directory
_ROOT_TREE_OBJECTID = 1
_ROOT_ITEM_KEY = 132
_EXTENT_DATA_KEY = 108
_FILE_EXTENT_INLINE = 0
_SEARCH_KEY = struct.Struct("=7Q4I4Q")  # btrfs_ioctl_search_key
_SEARCH_HEADER = struct.Struct("=3Q2I")  # btrfs_ioctl_search_header: transid, objectid, offset, type, len
_ROOT_ITEM_OTRANSID = 303  # offset of otransid in the packed btrfs_root_item
_U64 = struct.Struct("=Q")
_EXTENT_HEAD = struct.Struct("=QQBBHB")  # generation, ram_bytes, compression, encryption, other, type
_EXTENT_REGULAR = struct.Struct("=4Q")  # disk_bytenr, disk_num_bytes, offset, num_bytes


def _ioc(direction: int, number: int) -> int:
    return (direction << 30) | (_ARGS_SIZE << 16) | (_MAGIC << 8) | number


_IOC_SNAP_DESTROY = _ioc(1, 15)
_IOC_TREE_SEARCH = _ioc(3, 17)
_IOC_INO_LOOKUP = _ioc(3, 18)
_IOC_SNAP_CREATE_V2 = _ioc(1, 23)
_IOC_SUBVOL_CREATE_V2 = _ioc(1, 24)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _vol_args_v2(name: str, *, fd: int = 0, flags: int = 0) -> bytearray:
    """btrfs_ioctl_vol_args_v2: fd, transid, flags, a 32-byte union, then the name."""
    args = bytearray(_ARGS_SIZE)
    struct.pack_into("=qQQ", args, 0, fd, 0, flags)
    encoded = os.fsencode(name)
    if len(encoded) >= _ARGS_SIZE - 56 or b"/" in encoded:
        raise ValueError(f"not a subvolume name: {name!r}")
    args[56 : 56 + len(encoded)] = encoded
    return args


def create_subvolume(path: Path) -> None:
    with _opened(path.parent) as parent:
        fcntl.ioctl(parent, _IOC_SUBVOL_CREATE_V2, _vol_args_v2(path.name))


def snapshot(source: Path, target: Path, *, read_only: bool) -> None:
    """Snapshot the subvolume ``source`` as ``target`` (which must not exist): constant time, whatever it holds."""
    with _opened(source) as src, _opened(target.parent) as parent:
        args = _vol_args_v2(target.name, fd=src, flags=_SUBVOL_RDONLY if read_only else 0)
        fcntl.ioctl(parent, _IOC_SNAP_CREATE_V2, args)


def delete_subvolume(path: Path) -> None:
    """Unlink a subvolume (read-only or not, empty or not) at once; the kernel frees its blocks in the background."""
    args = bytearray(_ARGS_SIZE)
    args[8 : 8 + len(os.fsencode(path.name))] = os.fsencode(path.name)  # btrfs_ioctl_vol_args: fd, name
    with _opened(path.parent) as parent:
        fcntl.ioctl(parent, _IOC_SNAP_DESTROY, args)


def is_subvolume(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.lstat(path).st_ino == _FIRST_FREE_OBJECTID
    return False


def _subvolume_id(fd: int) -> int:
    args = bytearray(_ARGS_SIZE)
    struct.pack_into("=QQ", args, 0, 0, _FIRST_FREE_OBJECTID)
    fcntl.ioctl(fd, _IOC_INO_LOOKUP, args)
    return int(_U64.unpack_from(args, 0)[0])


def _search(fd: int, tree: int, objectids: tuple[int, int], item_type: int, min_transid: int) -> Iterator[bytes]:
    """Items of one type in a tree, from tree blocks written in transaction ``min_transid`` or later (the kernel
    skips older blocks, so the cost follows what changed, not what the tree holds)."""
    # The kernel's range is on whole keys (objectid, type, offset), so items of other types within it come too.
    position_key = (objectids[0], item_type, 0)
    last = 2**64 - 1
    while True:
        args = bytearray(_ARGS_SIZE)
        low, low_type, low_offset = position_key
        key = (tree, low, objectids[1], low_offset, last, min_transid, last, low_type, item_type, 4096, 0, 0, 0, 0, 0)
        _SEARCH_KEY.pack_into(args, 0, *key)
        fcntl.ioctl(fd, _IOC_TREE_SEARCH, args)
        found = _SEARCH_KEY.unpack_from(args, 0)[9]
        if not found:
            return
        position = _SEARCH_KEY.size
        for _ in range(found):
            _transid, objectid, offset, kind, length = _SEARCH_HEADER.unpack_from(args, position)
            position += _SEARCH_HEADER.size
            if kind == item_type:
                yield bytes(args[position : position + length])
            position += length
        # Go on just after the last key returned.
        if offset < last:
            position_key = (objectid, kind, offset + 1)
        elif kind < 255:
            position_key = (objectid, kind + 1, 0)
        elif objectid < objectids[1]:
            position_key = (objectid + 1, 0, 0)
        else:
            return


def created_in(path: Path) -> int:
    """The transaction that created the subvolume at ``path`` (its ``otransid``)."""
    with _opened(path) as fd:
        subvolume = _subvolume_id(fd)
        for item in _search(fd, _ROOT_TREE_OBJECTID, (subvolume, subvolume), _ROOT_ITEM_KEY, 0):
            return int(_U64.unpack_from(item, _ROOT_ITEM_OTRANSID)[0])
    raise OSError(f"{path} is not a btrfs subvolume")


def bytes_written_after(path: Path, transid: int) -> int:
    """Bytes of file data the subvolume at ``path`` references that were written after transaction ``transid``
    (inline data at its length, compressed extents at their size on disk, holes not at all)."""
    total = 0
    with _opened(path) as fd:
        for item in _search(fd, 0, (0, 2**64 - 1), _EXTENT_DATA_KEY, transid + 1):
            generation, _ram_bytes, compression, _enc, _other, kind = _EXTENT_HEAD.unpack_from(item, 0)
            if generation <= transid:
                continue  # an older extent in a leaf rewritten since
            if kind == _FILE_EXTENT_INLINE:
                total += len(item) - _EXTENT_HEAD.size
                continue
            disk_bytenr, disk_num_bytes, _offset, num_bytes = _EXTENT_REGULAR.unpack_from(item, _EXTENT_HEAD.size)
            if disk_bytenr:
                total += disk_num_bytes if compression else num_bytes
    return total
