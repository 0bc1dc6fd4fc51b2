"""File operations confined to the sandbox's writable roots, without a window between a check and a use.

The supervisor runs inside the sandbox's mount namespace as the sandbox user, so the kernel already keeps it
away from the host; confinement here is about the user's intent and about the sandbox's own processes racing the
files API: a path that leaves ``/workspace``, ``/home/user`` or ``/tmp`` — by ``..``, by an absolute path
elsewhere, or through a symlink — is refused with a clear error instead of quietly touching the read-only system
view or the supervisor's own ``/run/cove``.

Every operation first opens the directory it works in (following links, as a user expects) and then checks where
that descriptor really is (``/proc/self/fd``); everything after that — stat, create, rename, remove, list — is
relative to the descriptor, and the last component is never followed unless the operation is meant to follow it
(then the object opened is checked the same way). A link swapped in between cannot redirect anything: the
checked descriptor is what gets used. Reads refuse anything but regular files (a FIFO would block the reader).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

ROOTS = ("/workspace", "/home/user", "/tmp")
DEFAULT_DIR = "/workspace"
MAX_PATH = 4096
MAX_LIST = 10_000
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class FileError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _inside(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in ROOTS)


def normalize(path: str) -> str:
    """A user's path as an absolute, normalised path inside the roots (lexically), or ``FileError``."""
    if not path or "\0" in path:
        raise FileError("invalid_path", "path must be a non-empty string without NUL bytes")
    if len(path.encode()) > MAX_PATH:
        raise FileError("invalid_path", f"path is longer than {MAX_PATH} bytes")
    raw = PurePosixPath(path)
    if ".." in raw.parts:
        raise FileError(
            "path_outside_sandbox",
            f"{path!r}: '..' is not allowed in sandbox paths, as it could lead outside",
        )
    absolute = raw if raw.is_absolute() else PurePosixPath(DEFAULT_DIR) / raw
    normal = os.path.normpath(str(absolute))
    if not _inside(normal):
        raise FileError(
            "path_outside_sandbox",
            f"{path!r} is outside the sandbox's files; use a path under {', '.join(ROOTS)}",
        )
    return normal


def _where(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _confined(fd: int, path: str) -> int:
    """``fd`` when what it holds lies inside the roots; closed and refused otherwise."""
    real = _where(fd)
    if not _inside(real):
        os.close(fd)
        raise FileError("path_outside_sandbox", f"{path!r} resolves through a symlink to {real}, outside the sandbox")
    return fd


def _translate(exc: OSError, path: str) -> FileError:
    codes = {
        FileNotFoundError: "not_found",
        FileExistsError: "already_exists",
        IsADirectoryError: "is_a_directory",
        NotADirectoryError: "not_a_directory",
        PermissionError: "permission_denied",
    }
    for kind, code in codes.items():
        if isinstance(exc, kind):
            return FileError(code, f"{path}: {exc.strerror}")
    if exc.errno == errno.ENOTEMPTY:
        return FileError("directory_not_empty", f"{path}: directory not empty (use recursive)")
    if exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        return FileError("disk_quota_exceeded", f"{path}: the sandbox's disk quota is full ({exc.strerror})")
    if exc.errno == errno.ELOOP:
        return FileError("path_outside_sandbox", f"{path}: too many levels of symbolic links")
    return FileError("io_error", f"{path}: {exc.strerror or exc}")


@contextlib.contextmanager
def _errors(path: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _translate(exc, path) from exc


@contextlib.contextmanager
def _directory(path: str, normal: str) -> Iterator[int]:
    """The directory at ``normal`` (links followed), open and checked to lie inside the roots."""
    with _errors(path):
        fd = os.open(normal, _DIR_FLAGS)
    try:
        yield _confined(fd, path)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


@contextlib.contextmanager
def _parent(path: str, *, root_allowed: bool = False) -> Iterator[tuple[int, str]]:
    """(the checked parent directory, the last component) of ``path``; the last component is not followed."""
    normal = normalize(path)
    if normal in ROOTS:
        if not root_allowed:
            raise FileError("permission_denied", f"{path}: a sandbox root cannot be removed, renamed or replaced")
        with _directory(path, normal) as fd:
            yield fd, "."
        return
    parent, name = os.path.split(normal)
    with _directory(path, parent) as fd:
        yield fd, name


def describe_at(directory: int, name: str, shown: str) -> dict[str, Any]:
    st = os.stat(name, dir_fd=directory, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        kind = "symlink"
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
    else:
        kind = "other"
    return {
        "name": os.path.basename(shown),
        "path": shown,
        "type": kind,
        "size": st.st_size,
        "mode": stat.S_IMODE(st.st_mode),
        "modified_at": st.st_mtime,
        "symlink_target": os.readlink(name, dir_fd=directory) if kind == "symlink" else None,
    }


def stat_path(path: str) -> dict[str, Any]:
    with _parent(path, root_allowed=True) as (directory, name), _errors(path):
        shown = _where(directory) if name == "." else os.path.join(_where(directory), name)
        return describe_at(directory, name, shown)


def exists(path: str) -> bool:
    with _parent(path, root_allowed=True) as (directory, name):
        try:
            os.stat(name, dir_fd=directory, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _translate(exc, path) from exc
        return True


def list_dir(path: str, *, after: str | None = None, limit: int = MAX_LIST) -> dict[str, Any]:
    """Entries sorted by name, at most ``limit`` of them after the name ``after``; ``has_more`` says if more
    follow (a directory of 400,000 entries is listed page by page, never in one reply)."""
    normal = normalize(path)
    limit = max(1, min(limit, MAX_LIST))
    with _directory(path, normal) as directory, _errors(path):
        real = _where(directory)
        listing = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=directory)
        try:
            with os.scandir(listing) as entries:
                names = sorted(entry.name for entry in entries if after is None or entry.name > after)
        finally:
            os.close(listing)
        page = []
        for name in names[:limit]:
            with contextlib.suppress(FileNotFoundError):  # removed since the listing
                page.append(describe_at(directory, name, os.path.join(real, name)))
        return {"entries": page, "has_more": len(names) > limit}


@contextlib.contextmanager
def _made_directory(path: str, normal: str) -> Iterator[int]:
    """``mkdir -p`` of ``normal``, one checked component at a time; yields the final directory."""
    root = next(r for r in ROOTS if normal == r or normal.startswith(r + "/"))
    parts = [part for part in normal[len(root) :].split("/") if part]
    with _directory(path, root) as fd, _errors(path):
        current = os.dup(fd)
        try:
            for part in parts:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=current)
                following = _confined(os.open(part, _DIR_FLAGS, dir_fd=current), path)
                os.close(current)
                current = following
            yield current
        finally:
            os.close(current)


def mkdir(path: str, *, parents: bool) -> dict[str, Any]:
    normal = normalize(path)
    if parents:
        with _made_directory(path, normal) as directory, _errors(path):
            real = _where(directory)
            return describe_at(directory, ".", real)
    with _parent(path) as (directory, name), _errors(path):
        os.mkdir(name, dir_fd=directory)
        return describe_at(directory, name, os.path.join(_where(directory), name))


def remove(path: str, *, recursive: bool) -> None:
    with _parent(path) as (directory, name), _errors(path):
        st = os.stat(name, dir_fd=directory, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=directory)
        elif recursive:
            import shutil  # here, not at the top: with zlib, bz2 and lzma, 2.4 ms of every sandbox's start

            shutil.rmtree(name, dir_fd=directory)  # descriptor-based: never follows a link out of the tree
        else:
            os.rmdir(name, dir_fd=directory)


def rename(source: str, destination: str) -> dict[str, Any]:
    with _parent(source) as (from_dir, from_name), _parent(destination) as (to_dir, to_name), _errors(source):
        os.rename(from_name, to_name, src_dir_fd=from_dir, dst_dir_fd=to_dir)
        return describe_at(to_dir, to_name, os.path.join(_where(to_dir), to_name))


def open_for_read(path: str) -> tuple[int, int]:
    """Open a regular file for streaming (links followed, then checked); returns (fd, size)."""
    normal = normalize(path)
    with _errors(path):
        fd = _confined(os.open(normal, _READ_FLAGS), path)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileError("is_a_directory", f"{path} is a directory")
        raise FileError("not_a_regular_file", f"{path} is not a regular file (a FIFO, socket or device)")
    os.set_blocking(fd, True)
    return fd, st.st_size


class Upload:
    """A file being written: a temporary file beside the target, renamed over it once complete, so a reader
    never sees half a file; everything is relative to the (checked) directory it lands in."""

    def __init__(self, path: str, mode: int | None) -> None:
        self.path = path
        normal = normalize(path)
        if normal in ROOTS:
            raise FileError("is_a_directory", f"{path} is a directory")
        parent, self.name = os.path.split(normal)
        with _made_directory(path, parent) as directory:
            self.directory = os.dup(directory)
        try:
            with _errors(path):
                if self._is_directory():
                    raise FileError("is_a_directory", f"{path} is a directory")
                self.temp = f".{self.name}.cove-upload-{os.urandom(6).hex()}"
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                self.fd = os.open(self.temp, flags, mode if mode is not None else 0o644, dir_fd=self.directory)
        except BaseException:
            os.close(self.directory)
            raise

    def _is_directory(self) -> bool:
        try:
            return stat.S_ISDIR(os.stat(self.name, dir_fd=self.directory, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        with _errors(self.path):
            while view:
                view = view[os.write(self.fd, view) :]

    def finish(self) -> dict[str, Any]:
        with _errors(self.path):
            os.rename(self.temp, self.name, src_dir_fd=self.directory, dst_dir_fd=self.directory)
            return describe_at(self.directory, self.name, os.path.join(_where(self.directory), self.name))

    def close(self, *, completed: bool) -> None:
        os.close(self.fd)
        if not completed:
            with contextlib.suppress(OSError):
                os.unlink(self.temp, dir_fd=self.directory)
        os.close(self.directory)
