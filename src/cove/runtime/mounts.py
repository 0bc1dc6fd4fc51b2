"""The few mount system calls the layer storage needs, through ctypes (Python has no wrappers for them).

The new mount API is used because it does two things the old ``mount(2)`` string cannot: idmapped bind mounts
(a layer's files, owned on disk by one neutral uid, appear owned by whichever sandbox mounts them, so a fork
needs no ``chown`` of its origin's files) and ``lowerdir+`` (one layer per call, so no 4 KiB option limit).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import subprocess
import time
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]

# New mount API syscalls share one number on every architecture Linux added them to at once.
_OPEN_TREE, _MOVE_MOUNT, _FSOPEN, _FSCONFIG, _FSMOUNT, _MOUNT_SETATTR = 428, 429, 430, 431, 432, 442
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE = 1
_CLOEXEC = 0o2000000  # open_tree takes O_CLOEXEC; fsopen and fsmount have their own flag
_FS_CLOEXEC = 0x1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_RDONLY = 0x1
_MOUNT_ATTR_NOSUID = 0x2
_MOUNT_ATTR_NODEV = 0x4
_MOUNT_ATTR_IDMAP = 0x100000
# Every mount Cove makes of a sandbox's files: a setuid file or a device node a sandbox made means nothing
# through it, on the host included.
_INERT = _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_MNT_DETACH = 2
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_REMOUNT = 0x20
_MS_BIND = 0x1000
_MS_PRIVATE = 1 << 18
_MS_SHARED = 1 << 20
_USERNS_TIMEOUT = 5.0


class MountError(OSError):
    pass


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _syscall(number: int, *args: object) -> int:
    result = int(_libc.syscall(number, *args))
    if result < 0:
        errno = ctypes.get_errno()
        raise MountError(errno, f"{os.strerror(errno)} (syscall {number})")
    return result


def _userns_fd(inner: int, outer: int) -> int:
    """A user namespace mapping uid/gid ``inner`` to ``outer``: the description an idmapped mount needs.

    Python 3.11 cannot unshare by itself, so a short-lived ``unshare`` process creates the namespace; its
    descriptor keeps the namespace alive after the process is gone.
    """
    own = os.readlink("/proc/self/ns/user")
    process = subprocess.Popen(["unshare", "--user", "sleep", "30"], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + _USERNS_TIMEOUT
        while True:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{process.pid}/ns/user") != own:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise MountError(0, "could not create a user namespace for an idmapped mount")
            time.sleep(0.0002)
        proc = Path(f"/proc/{process.pid}")
        (proc / "uid_map").write_text(f"{inner} {outer} 1\n")
        (proc / "setgroups").write_text("deny")
        (proc / "gid_map").write_text(f"{inner} {outer} 1\n")
        return os.open(proc / "ns" / "user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        process.kill()
        process.wait()


def bind_idmapped(source: Path, target: Path, *, disk_uid: int, uid: int, read_only: bool = True) -> None:
    """Bind ``source`` at ``target`` so that files owned by ``disk_uid`` appear owned by ``uid``; writable, what
    ``uid`` creates through it lands on disk owned by ``disk_uid`` (and nobody else can create anything)."""
    userns = _userns_fd(disk_uid, uid)
    try:
        attr = _MOUNT_ATTR_IDMAP | _INERT | (_MOUNT_ATTR_RDONLY if read_only else 0)
        _bind(source, target, _MountAttr(attr, 0, 0, userns))
    finally:
        os.close(userns)


def _bind(source: Path, target: Path, attr: _MountAttr) -> None:
    """Clone the mount at ``source``, give it ``attr``, attach it at ``target`` (stacked on what is there)."""
    tree = _syscall(_OPEN_TREE, _AT_FDCWD, os.fsencode(source), _OPEN_TREE_CLONE | _CLOEXEC)
    try:
        _syscall(_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr))
        _syscall(_MOVE_MOUNT, tree, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(tree)


def mount_overlay(lowers: list[Path], upper: Path | None, work: Path | None, target: Path) -> None:
    """Mount an overlay at ``target``; ``lowers`` top first. Without ``upper`` it is a read-only view.

    Redirects, metacopy and the index stay off so that every layer is a self-contained directory tree that can
    be copied, squashed or stacked under any other upper.
    """
    fs = _syscall(_FSOPEN, b"overlay", _FS_CLOEXEC)
    try:

        def config(key: str, value: str | Path) -> None:
            _syscall(_FSCONFIG, fs, _FSCONFIG_SET_STRING, key.encode(), os.fsencode(value), 0)

        try:
            for lower in lowers:
                config("lowerdir+", lower)
        except MountError:
            # Kernels before 6.8 know only the joined form (bounded by the page-sized option string).
            config("lowerdir", ":".join(str(lower) for lower in lowers))
        if upper is not None and work is not None:
            config("upperdir", upper)
            config("workdir", work)
        for key in ("redirect_dir", "metacopy", "index"):
            config(key, "off")
        _syscall(_FSCONFIG, fs, _FSCONFIG_CMD_CREATE, None, None, 0)
        mounted = _syscall(_FSMOUNT, fs, _FS_CLOEXEC, _INERT)
        try:
            _syscall(_MOVE_MOUNT, mounted, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(mounted)
    finally:
        os.close(fs)


def detach(target: Path) -> None:
    """Lazy unmount: returns at once; the kernel finishes (flushing dirty pages) once nothing uses the mount."""
    if _libc.umount2(os.fsencode(target), _MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        if errno not in (22, 2):  # EINVAL: not a mount point; ENOENT: already gone
            raise MountError(errno, f"cannot unmount {target}: {os.strerror(errno)}")


def bind(source: Path, target: Path) -> None:
    """Bind ``source`` at ``target`` (stacked on whatever is mounted there), nosuid and nodev."""
    _bind(source, target, _MountAttr(_INERT, 0, 0, 0))


def make_shared(target: Path) -> None:
    """Make the directory ``target`` a mount point of its own peer group, unless it is one already.

    Mounts made under it afterwards propagate to every copy of it, the copies bwrap makes in a sandbox's mount
    namespace included (bwrap turns them into slaves): the way to change what a running sandbox sees. Like every
    mount Cove makes of a sandbox's tree, it is nosuid and nodev.
    """
    if is_mount_point(target):
        return
    inert = _MS_BIND | _MS_REMOUNT | _MS_NOSUID | _MS_NODEV
    for source, flags in ((target, _MS_BIND), (None, inert), (None, _MS_PRIVATE), (None, _MS_SHARED)):
        if _libc.mount(source and os.fsencode(source), os.fsencode(target), None, flags, None) != 0:
            errno = ctypes.get_errno()
            raise MountError(errno, f"cannot make {target} a shared mount: {os.strerror(errno)}")


def is_mount_point(path: Path) -> bool:
    """From the mount table, because ``os.path.ismount`` misses a bind mount within one filesystem."""
    wanted = os.fsencode(os.path.realpath(path))
    with open("/proc/self/mountinfo", "rb") as table:
        return any(_unescape(line.split(b" ", 5)[4]) == wanted for line in table)


def _unescape(field: bytes) -> bytes:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    return re.sub(rb"\\([0-7]{3})", lambda match: bytes([int(match.group(1), 8)]), field)
