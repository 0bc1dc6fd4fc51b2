"""Sealing a layer: copy what changed in a live overlay upper since the last seal, so the cost is the change.

The upper of a running sandbox cannot be swapped under its processes, so it stays in place and keeps
everything written since it was mounted. A seal (taken while the sandbox is frozen) finds what changed since
the previous seal by two cheap facts:

- **ctime**: the kernel sets it on every write, chmod, rename or link; the sandbox cannot set it. Entries whose
  ctime is at least that of a marker file touched during the previous seal (less a clock tick) are copied.
- **a manifest** of the upper's entries (path → inode, kind) at the previous seal: paths that disappeared get a
  whiteout (a 0/0 character device) in the new layer; a directory whose inode changed was removed and made
  again, so it becomes opaque in the new layer (hiding what older layers hold under it) and is copied whole.

The manifest and marker are written as ``*.next`` and only replace the current ones on ``commit``, so a seal
that is thrown away leaves the next one comparing against the last seal that counted.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cove.runtime.layers import LAYER_UID

OPAQUE_XATTR = "trusted.overlay.opaque"
MANIFEST = "manifest"
MARKER = "marker"

Manifest = dict[bytes, bytes]  # path → b"<kind> <inode>"


@dataclass(frozen=True)
class Sealed:
    entries: int
    size_bytes: int


@dataclass(frozen=True)
class _Entry:
    path: str
    kind: str  # find's %y: d(irectory), f(ile), l(ink), p (fifo), s(ocket), c (a whiteout, see _scan)


# find(1) lists and stats the upper several times faster than os.scandir + stat in Python, and one regex parses
# its output in C: a sandbox that wrote 20,000 files since it started has 20,000 entries to look at each time.
_FIND_FORMAT = "%y %i %C@ %P\\0"
_RECORD = re.compile(rb"([a-z]) (\d+) (\d+\.\d+) ([^\0]*)\0")
# Timestamps come from the kernel's coarse clock, up to a tick behind: compare with this much margin, so that a
# write right after the previous thaw is never taken for one before it (copying a few files twice is harmless).
_CLOCK_SLACK_NS = 50_000_000


def _scan(upper: Path) -> list[tuple[bytes, bytes, bytes, bytes]]:
    """(kind, inode, ctime, path) of every entry of the upper, parents before children. The only character
    devices an upper can hold are whiteouts: the sandbox cannot make other devices."""
    listing = subprocess.run(
        ["find", str(upper), "-mindepth", "1", "-printf", _FIND_FORMAT], capture_output=True, check=True
    ).stdout
    return _RECORD.findall(listing)


def _load(state: Path) -> Manifest:
    try:
        manifest: Manifest = marshal.loads((state / MANIFEST).read_bytes())
    except (FileNotFoundError, EOFError, ValueError, TypeError):
        return {}
    return manifest


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _own(path: Path) -> None:
    os.chown(path, LAYER_UID, LAYER_UID, follow_symlinks=False)


def _ensure_dir(layer: Path, upper: Path, relative: str) -> None:
    """Make ``relative`` and its parents in the layer, with the upper's modes (they merge with older layers)."""
    parts = relative.split("/")
    for depth in range(1, len(parts) + 1):
        sub = "/".join(parts[:depth])
        target = layer / sub
        if not target.is_dir():
            target.mkdir()
            target.chmod(stat.S_IMODE((upper / sub).lstat().st_mode))
            _own(target)


def _write(layer: Path, upper: Path, entry: _Entry, opaque: bool) -> int:
    source, target = upper / entry.path, layer / entry.path
    parent = os.path.dirname(entry.path)
    if parent:
        _ensure_dir(layer, upper, parent)
    st = source.lstat()
    mode = stat.S_IMODE(st.st_mode)
    if entry.kind == "d":
        target.mkdir(exist_ok=True)
        if opaque:
            os.setxattr(target, OPAQUE_XATTR, b"y")
    elif entry.kind == "c":
        os.mknod(target, stat.S_IFCHR, os.makedev(0, 0))
    elif entry.kind == "l":
        os.symlink(os.readlink(source), target)
    elif entry.kind == "f":
        shutil.copyfile(source, target, follow_symlinks=False)
    elif entry.kind == "p":
        os.mkfifo(target)
    else:
        return 0  # sockets and devices have no content worth keeping
    _own(target)
    if entry.kind != "l":
        target.chmod(mode)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    return int(st.st_blocks) * 512


def seal(upper: Path, layer: Path, state: Path) -> Sealed:
    """Write into ``layer`` what changed in ``upper`` since the last committed seal; the processes writing to
    the upper must be frozen meanwhile."""
    marker = state / MARKER
    since = (marker.stat().st_ctime_ns - _CLOCK_SLACK_NS) / 1e9 if marker.exists() else 0.0
    (state / f"{MARKER}.next").write_bytes(b"")
    previous = _load(state)
    records = _scan(upper)
    current: Manifest = {path: kind + b" " + inode for kind, inode, _ctime, path in records}
    written = size = 0
    replaced: list[bytes] = []  # directories made again since the last seal: copied whole, opaque
    for kind, _inode, ctime, path in records:
        inside_replaced = bool(replaced) and any(path.startswith(prefix) for prefix in replaced)
        opaque = (
            kind == b"d"
            and previous.get(path) != current[path]
            and (path in previous or _is_opaque(upper / os.fsdecode(path)))
        )
        if opaque:
            replaced.append(path + b"/")
        if opaque or inside_replaced or float(ctime) >= since:
            size += _write(layer, upper, _Entry(os.fsdecode(path), kind.decode()), opaque)
            written += 1
    for path in previous.keys() - current.keys():
        parent = os.path.dirname(path)
        if parent:
            if not current.get(parent, b"").startswith(b"d ") or any((parent + b"/").startswith(p) for p in replaced):
                continue  # the parent's own whiteout, replacement or opaque directory already hides it
            _ensure_dir(layer, upper, os.fsdecode(parent))
        os.mknod(layer / os.fsdecode(path), stat.S_IFCHR, os.makedev(0, 0))
        _own(layer / os.fsdecode(path))
        written += 1
    _restore_dir_times(layer, upper)
    (state / f"{MANIFEST}.next").write_bytes(marshal.dumps(current))
    return Sealed(entries=written, size_bytes=size)


def _restore_dir_times(layer: Path, upper: Path) -> None:
    """Writing children moved the layer's directory mtimes; put back the upper's."""
    for directory, _dirs, _names in os.walk(layer, topdown=False):
        relative = os.path.relpath(directory, layer)
        with contextlib.suppress(FileNotFoundError):
            st = (upper / relative).lstat()
            os.utime(directory, ns=(st.st_atime_ns, st.st_mtime_ns))


def commit(state: Path) -> None:
    """The seal became part of a checkpoint: the next one compares against it."""
    for name in (MANIFEST, MARKER):
        with contextlib.suppress(FileNotFoundError):
            (state / f"{name}.next").replace(state / name)


def discard(state: Path) -> None:
    for name in (MANIFEST, MARKER):
        with contextlib.suppress(FileNotFoundError):
            (state / f"{name}.next").unlink()
