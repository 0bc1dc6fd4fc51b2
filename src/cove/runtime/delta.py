"""Sealing a layer: copy what changed in a live overlay upper since the last seal, so the cost is the change.

The upper of a running sandbox cannot be swapped under its processes, so it stays in place and keeps
everything written since it was mounted. A seal (taken while the sandbox is frozen) finds what changed since
the previous seal by two cheap facts:

- **ctime**: the kernel sets it on every write, chmod, rename or link; the sandbox cannot set it. Entries whose
  ctime is at least that of a marker file touched during the previous seal (less a clock tick) are copied.
- **a manifest** of the upper's entries (path → inode, kind) at the previous seal: paths that disappeared get a
  whiteout (a 0/0 character device) in the new layer; a directory whose inode changed was removed and made
  again, so it becomes opaque in the new layer (hiding what older layers hold under it) and is copied whole;
  paths the manifest does not hold are new, even with old ctimes (everything under a renamed directory).

Looking at every entry is itself the cost once the upper is big (``find`` over 20,000 entries: about 45 ms), so
when ``runtime.changes`` can name the few entries that may have changed (the tree's shape did not), only those
are looked at, and the manifest is left as it is.

What changed is copied in one ``tar`` pipe (not file by file: a first checkpoint of 20,000 files took seconds of
Python per-file work), owned by ``LAYER_UID`` as the archive is written, so no ownership pass is needed; a few
hundred entries or fewer are copied in process instead, which skips tar's start-up. Either way the copies lose
their setuid and setgid bits: a layer is shared by every fork of the checkpoint, and a setuid file owned by
``LAYER_UID`` would let whoever ran it rewrite what all of them see.

The manifest and marker are written as ``*.next`` and only replace the current ones on ``commit``, so a seal
that is thrown away leaves the next one comparing against the last seal that counted.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import re
import shlex
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cove.runtime import safe_open
from cove.runtime.layers import LAYER_UID

OPAQUE_XATTR = "trusted.overlay.opaque"
MANIFEST = "manifest"
MARKER = "marker"

Manifest = dict[bytes, bytes]  # path → b"<kind> <inode>"


@dataclass(frozen=True)
class Sealed:
    entries: int
    size_bytes: int
    # Every directory of the upper (relative), when this seal scanned it whole; None when it looked only at the
    # entries it was told to (``only``).
    directories: list[bytes] | None = None


# find(1) lists and stats the upper several times faster than os.scandir + stat in Python and compares each
# entry's ctime with the previous seal's in C (``-cnewer``, against a reference file whose mtime is that
# instant): a sandbox that wrote 20,000 files since it started has 20,000 entries to look at each time. It writes
# two lists: every entry (kind, inode, path: the listing, which is also the next manifest) and the changed ones
# (kind, inode, 512-byte blocks, path). When the listing is byte for byte the previous one — nothing made,
# deleted, renamed or replaced, the common case — only the changed list is looked at, and no Python runs per entry.
_LISTING_FORMAT = "%y %i %P\\0"
_CHANGED_FORMAT = "%y %i %b %P\\0"
_ENTRY = re.compile(rb"([a-z]) (\d+) ([^\0]*)\0")
_CHANGED = re.compile(rb"([a-z]) (\d+) (\d+) ([^\0]*)\0")
# Timestamps come from the kernel's coarse clock, up to a tick behind: compare with this much margin, so that a
# write right after the previous thaw is never taken for one before it (copying a few files twice is harmless).
_CLOCK_SLACK_NS = 50_000_000
# Up to this many entries are copied in process (``_copy_each``), more through tar (``_copy``): about where
# Python's per-entry work (~0.1 ms) overtakes tar's start-up.
_COPY_EACH_MAX = 300
_KINDS = {
    stat.S_IFREG: b"f",
    stat.S_IFDIR: b"d",
    stat.S_IFLNK: b"l",
    stat.S_IFCHR: b"c",
    stat.S_IFBLK: b"b",
    stat.S_IFIFO: b"p",
    stat.S_IFSOCK: b"s",
}
DIRECTORIES = "directories"  # find's list of the upper's directories
LISTING = "listing"  # the manifest as find wrote it (``MANIFEST`` is the older, marshalled form)
SINCE = "since"  # the reference file for -cnewer
CHANGED = "changed"  # find's list of changed entries


Entry = tuple[bytes, bytes, bytes, bytes]  # kind (find's %y letter), inode, 512-byte blocks, path


def _scan(upper: Path, reference: Path, changed: Path, directories: Path) -> tuple[bytes, list[Entry], list[bytes]]:
    """The listing of the upper (parents before children), the entries whose ctime is after the reference's
    mtime, and every directory. The only character devices an upper can hold are whiteouts: the sandbox cannot
    make other devices."""
    find = ["find", str(upper), "-mindepth", "1", "(", "-printf", _LISTING_FORMAT]
    find += ["-cnewer", str(reference), "-fprintf", str(changed), _CHANGED_FORMAT, ")", ","]
    find += ["-type", "d", "-fprintf", str(directories), "%P\\0"]
    listing = subprocess.run(find, capture_output=True, check=True).stdout
    return listing, _CHANGED.findall(changed.read_bytes()), directories.read_bytes().split(b"\0")[:-1]


def _changed_among(upper: Path, since_ns: int, paths: set[bytes]) -> list[Entry]:
    """Those of ``paths`` (relative to the upper) whose ctime is after ``since_ns``, as ``_scan`` gives them.

    A path may be stale: a mapping outlives its file and its directory, and ``/proc/<pid>/maps`` keeps naming
    them (``… (deleted)``) while a symlink of the sandbox stands where the directory was. So each is resolved
    beneath the upper through no link (only its last component may be one, and is not followed); one that
    cannot be is no entry of the upper's own, and is skipped."""
    found = []
    with safe_open.opened(safe_open.open_root(upper)) as root:
        for path in paths:
            try:
                fd = safe_open.openat2(root, os.fsdecode(path), os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue  # gone (only a shape change removes an entry: the caller then scans), or through a link
            try:
                st = os.fstat(fd)
            finally:
                os.close(fd)
            if st.st_ctime_ns > since_ns:
                found.append((_KINDS[stat.S_IFMT(st.st_mode)], b"%d" % st.st_ino, b"%d" % st.st_blocks, path))
    return found


def _manifest(listing: bytes) -> Manifest:
    return {path: kind + b" " + inode for kind, inode, path in _ENTRY.findall(listing)}


def _previous(state: Path) -> tuple[bytes | None, Manifest | None]:
    """The previous seal's listing, or (from a server before listings) its marshalled manifest."""
    try:
        return (state / LISTING).read_bytes(), None
    except FileNotFoundError:
        return None, _load(state)


def _load(state: Path) -> Manifest:
    try:
        manifest: Manifest = marshal.loads((state / MANIFEST).read_bytes())
    except (FileNotFoundError, EOFError, ValueError, TypeError):
        return {}
    return manifest


def is_opaque(path: Path) -> bool:
    """Whether a directory of a layer or an upper hides what lower layers hold under it."""
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _own(path: Path) -> None:
    os.chown(path, LAYER_UID, LAYER_UID, follow_symlinks=False)


def _copy(upper: Path, layer: Path, paths: list[bytes]) -> None:
    """Copy ``paths`` (relative to the upper, each parent listed before its children) into the layer in one
    tar pipe, owned by ``LAYER_UID``, with their modes and mtimes; directories are copied without their content
    (what of it is needed is listed too). Hard links are copied as separate files, extended attributes not at all.
    """
    owner = [f"--owner=:{LAYER_UID}", f"--group=:{LAYER_UID}", "--numeric-owner", "--mode=u-s,g-s"]
    create = ["tar", "-C", str(upper), "--null", "--verbatim-files-from", "--no-recursion", "--hard-dereference"]
    create += ["--format=posix", "-T", "-", "-cf", "-"]
    extract = ["tar", "-C", str(layer), "-xf", "-", "--numeric-owner", "--same-owner", "--same-permissions"]
    script = " ".join(shlex.quote(arg) for arg in [*create, *owner]) + " | " + shlex.join(extract)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script], input=b"\0".join(paths) + b"\0", capture_output=True
    )
    # tar exits with 1 for "file changed as we read it", which only a sandbox that could not be frozen causes:
    # that checkpoint is not point-in-time anyway (and says so in the log); anything else is an error.
    if done.returncode not in (0, 1):
        raise subprocess.CalledProcessError(done.returncode, "tar", done.stdout, done.stderr)


def _copy_file(upper: int, path: bytes, target: bytes) -> None:
    """A regular file's content, through a descriptor that is that file: resolved beneath the upper through no
    link, never blocking, checked to be a regular file (the sandbox is frozen during a seal; this holds without)."""
    fd = safe_open.openat2(upper, os.fsdecode(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{os.fsdecode(path)} is no longer a regular file")
        with open(fd, "rb", closefd=False) as reader, open(target, "xb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
    finally:
        os.close(fd)


def _copy_each(upper: Path, layer: Path, paths: list[bytes]) -> None:
    """``_copy`` entry by entry in this process: for a few entries, much cheaper than starting two tars (which
    cost 20-60 ms on a loaded machine, most of a checkpoint after a few edits)."""
    directories = []
    with safe_open.opened(safe_open.open_root(upper)) as upper_fd:
        for path in paths:
            target = os.path.join(bytes(layer), path)
            st = os.stat(path, dir_fd=upper_fd, follow_symlinks=False)
            kind = stat.S_IFMT(st.st_mode)
            if kind == stat.S_IFDIR:
                os.mkdir(target)
                directories.append((target, st))
            elif kind == stat.S_IFREG:
                _copy_file(upper_fd, path, target)
            elif kind == stat.S_IFLNK:
                os.symlink(os.readlink(path, dir_fd=upper_fd), target)
            elif kind == stat.S_IFIFO or (kind == stat.S_IFCHR and st.st_rdev == 0):  # a FIFO, or a whiteout
                os.mknod(target, st.st_mode, st.st_rdev)
            else:
                continue  # sockets are never copied; no other device can be made in a sandbox
            _finish(target, st, kind)
    for target, st in reversed(directories):  # after their content, which moved their mtimes
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _finish(target: bytes, st: os.stat_result, kind: int) -> None:
    """Owner, mode (without setuid and setgid) and times of a copied entry."""
    os.chown(target, LAYER_UID, LAYER_UID, follow_symlinks=False)
    if kind != stat.S_IFLNK:
        os.chmod(target, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
    if kind != stat.S_IFDIR:
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def seal(upper: Path, layer: Path, state: Path, only: set[bytes] | None = None) -> Sealed:
    """Write into ``layer`` what changed in ``upper`` since the last committed seal; the processes writing to
    the upper must be frozen meanwhile. ``only``: the entries that may have changed, when the tree's shape is
    known not to have (``runtime.changes``); then nothing else is looked at.

    An entry is copied when its ctime is after the previous seal's, when its path, kind or inode is not what the
    manifest holds (a rename gives a whole subtree new paths without touching the ctimes under it), or when it
    lies under a directory made again (which becomes opaque and is copied whole). The copy is one tar pipe for
    the whole set, with the parents of every copied entry, so they keep the upper's modes and times.
    """
    marker = state / MARKER
    since_ns = max(marker.stat().st_ctime_ns - _CLOCK_SLACK_NS - 1, 0) if marker.exists() else 0
    reference = state / SINCE
    reference.write_bytes(b"")
    os.utime(reference, ns=(since_ns, since_ns))
    (state / f"{MARKER}.next").write_bytes(b"")
    directories: list[bytes] | None = None
    previous_listing: bytes | None
    previous: Manifest | None = None
    if only is not None and (state / LISTING).exists():
        changed = _changed_among(upper, since_ns, only)
        listing = previous_listing = b""  # the same entries as at the last seal: no manifest work
    else:
        listing, changed, directories = _scan(upper, reference, state / CHANGED, state / DIRECTORIES)
        previous_listing, previous = _previous(state)
    blocks = {path: int(count) for kind, _inode, count, path in changed if kind != b"s"}  # sockets: no content
    copy = set(blocks)
    replaced: list[bytes] = []  # directories made again since the last seal: copied whole, opaque
    deleted: list[bytes] = []
    if listing != previous_listing:
        current = _manifest(listing)
        if previous is None:
            previous = _manifest(previous_listing or b"")
        copy.update(path for path, value in current.items() - previous.items() if not value.startswith(b"s "))
        for path in sorted(copy):
            value = current[path]
            if (
                value.startswith(b"d ")
                and previous.get(path) != value
                and (path in previous or is_opaque(upper / os.fsdecode(path)))
            ):
                replaced.append(path)
        hidden = tuple(path + b"/" for path in replaced)
        if replaced:
            copy.update(p for p, value in current.items() if p.startswith(hidden) and not value.startswith(b"s "))
        for path in previous.keys() - current.keys():
            parent = os.path.dirname(path)
            if parent and (not current.get(parent, b"").startswith(b"d ") or (parent + b"/").startswith(hidden)):
                continue  # the parent's own whiteout, replacement or opaque directory already hides it
            deleted.append(path)
    for path in copy - blocks.keys():  # new paths with old ctimes (renamed, or under a replaced directory)
        blocks[path] = (upper / os.fsdecode(path)).lstat().st_blocks
    needed = set(copy)
    for path in [*copy, *deleted]:
        parts = path.split(b"/")
        needed.update(b"/".join(parts[:depth]) for depth in range(1, len(parts)))
    if needed:
        copy_all = _copy_each if len(needed) <= _COPY_EACH_MAX else _copy
        copy_all(upper, layer, sorted(needed))  # a parent sorts before what is under it
    for path in replaced:
        os.setxattr(layer / os.fsdecode(path), OPAQUE_XATTR, b"y")
    parents = set()
    for path in deleted:
        os.mknod(layer / os.fsdecode(path), stat.S_IFCHR, os.makedev(0, 0))
        _own(layer / os.fsdecode(path))
        parents.add(os.path.dirname(path))
    for parent in parents:  # making the whiteouts moved their directories' mtimes; put back the upper's
        with contextlib.suppress(FileNotFoundError):
            st = (upper / os.fsdecode(parent)).lstat()
            os.utime(layer / os.fsdecode(parent), ns=(st.st_atime_ns, st.st_mtime_ns))
    if directories is not None:
        (state / f"{LISTING}.next").write_bytes(listing)
    size = sum(blocks[path] for path in copy) * 512
    return Sealed(entries=len(copy) + len(deleted), size_bytes=size, directories=directories)


def commit(state: Path) -> None:
    """The seal became part of a checkpoint: the next one compares against it."""
    for name in (LISTING, MARKER):
        with contextlib.suppress(FileNotFoundError):
            (state / f"{name}.next").replace(state / name)
    with contextlib.suppress(FileNotFoundError):
        (state / MANIFEST).unlink()  # superseded by the listing


def discard(state: Path) -> None:
    for name in (LISTING, MARKER):
        with contextlib.suppress(FileNotFoundError):
            (state / f"{name}.next").unlink()
