"""Opening what a sandbox can write, from the host, without trusting it.

Everything under a sandbox's writable directories is the sandbox's to shape: a name the server expects to be a
file may be a symlink to a host secret, a hard link, a FIFO that blocks the opener forever, a socket bound by the
sandbox, or a directory swapped for a link between a check and a use. The root server therefore never opens such
a path the usual way. It opens the directory it owns (the sandbox's root on the host) and resolves the rest with
``openat2``: beneath that directory (``RESOLVE_BENEATH``), through no symlink at all (``RESOLVE_NO_SYMLINKS``,
magic links included), on the same mount (``RESOLVE_NO_XDEV``), never blocking (``O_NONBLOCK``: a FIFO opens at
once and is then refused), and checks what it got on the descriptor itself (``fstat``: the kind, the sandbox's
uid as owner, a single link) before reading a byte. Checks on the descriptor cannot race: whatever the sandbox
renames afterwards, the descriptor stays the object that passed them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

_SYS_OPENAT2 = 437  # the same number on every architecture (a syscall added after the tables were unified)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
_RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class UnsafePath(OSError):
    """A path in a sandbox's tree is not what the server expects there (a link, a FIFO, someone else's file…)."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(directory: int, path: str, flags: int, resolve: int = _RESOLVE) -> int:
    """``openat2(2)``: ``path`` relative to the open ``directory``, resolved under ``resolve``'s rules."""
    how = _OpenHow(flags, 0, resolve)
    fd = int(_libc.syscall(_SYS_OPENAT2, directory, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how)))
    if fd < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{os.strerror(errno)}: {path}")
    return fd


def available() -> bool:
    """Whether this kernel has ``openat2`` (Linux 5.6 and later): the server refuses to start without it."""
    try:
        fd = openat2(os.open("/", _PATH_FLAGS | os.O_DIRECTORY), ".", _PATH_FLAGS)
    except OSError:
        return False
    os.close(fd)
    return True


@contextlib.contextmanager
def opened(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def open_root(directory: Path) -> int:
    """A descriptor of a directory the server made and the sandbox cannot replace (its root on the host)."""
    return os.open(directory, _PATH_FLAGS | os.O_DIRECTORY)


def _kind_name(mode: int) -> str:
    kinds = {stat.S_IFREG: "a file", stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket", stat.S_IFIFO: "a FIFO"}
    return kinds.get(stat.S_IFMT(mode), "a device or other special file")


def _checked(fd: int, path: str, kind: int, uid: int) -> int:
    """``fd`` when it is of ``kind``, owned by ``uid`` and (a file) has a single link; else it is closed."""
    st = os.fstat(fd)
    problem = None
    if stat.S_IFMT(st.st_mode) != kind:
        problem = f"is {_kind_name(st.st_mode)}, not {_kind_name(kind)}"
    elif st.st_uid != uid:
        problem = f"is owned by uid {st.st_uid}, not the sandbox's"
    elif kind == stat.S_IFREG and st.st_nlink != 1:
        problem = f"has {st.st_nlink} hard links"
    if problem is not None:
        os.close(fd)
        raise UnsafePath(f"{path} {problem}")
    return fd


def _open_checked(root: int, path: str, flags: int, kind: int, uid: int) -> int:
    try:
        fd = openat2(root, path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EXDEV):  # a symlink, or a way out of the root
            raise UnsafePath(f"{path} leads through a link or out of the sandbox") from exc
        raise
    return _checked(fd, path, kind, uid)


def open_file(root: int, path: str, uid: int) -> int:
    """A sandbox's regular file for reading (non-blocking, close-on-exec), checked as the module says."""
    return _open_checked(root, path, _FILE_FLAGS, stat.S_IFREG, uid)


def open_directory(root: int, path: str, uid: int) -> int:
    """A sandbox's directory, open for listing, for watching (through ``fd_path``) or to resolve beneath."""
    return _open_checked(root, path, _FILE_FLAGS | os.O_DIRECTORY, stat.S_IFDIR, uid)


def fd_path(fd: int) -> str:
    """A path that names exactly the object behind ``fd`` (for calls that only take a path)."""
    return f"/proc/self/fd/{fd}"


def socket_path(root: int, path: str, uid: int) -> int:
    """An ``O_PATH`` descriptor of a unix socket the sandbox's uid bound; connect through ``fd_path`` of it."""
    return _open_checked(root, path, _PATH_FLAGS, stat.S_IFSOCK, uid)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected unix socket, as the kernel recorded it."""
    _pid, uid, _gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return int(uid)


def passed_tcp_stream(fd: int) -> socket.socket | None:
    """The socket behind a descriptor a sandbox passed, if it is a connected TCP stream socket (not a pipe, a
    file, a unix socket or a listening socket); otherwise the descriptor is closed and the answer is None."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:  # not a socket at all
        os.close(fd)
        return None
    try:
        if (
            sock.family in (socket.AF_INET, socket.AF_INET6)
            and sock.type == socket.SOCK_STREAM
            and sock.proto == socket.IPPROTO_TCP
            and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            and sock.getpeername()  # raises unless connected
        ):
            return sock
    except OSError:
        pass
    sock.close()
    return None


def read_at(fd: int, offset: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``offset`` (a file may have grown or shrunk since it was checked)."""
    chunks = []
    while limit > 0:
        data = os.pread(fd, min(limit, 1 << 20), offset)
        if not data:
            break
        chunks.append(data)
        offset += len(data)
        limit -= len(data)
    return b"".join(chunks)
