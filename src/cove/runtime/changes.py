"""Which entries of an overlay upper changed since the last seal: so a seal need not look at every entry.

A seal of a sandbox that wrote 20,000 files used to ``find`` all of them each time (about 45 ms, most of a
checkpoint) to learn which few changed. An inotify watch on each directory of the upper tells that instead: a
write through the overlay is reported on the upper's own inodes (measured: ``IN_MODIFY`` and ``IN_CLOSE_WRITE``
arrive on the upper directory's watch, from writes inside bwrap through a bind of the overlay).

The watch is an accelerator with a safe fallback, never the only source of truth. It answers "only these
directories had entries written, chmod-ed or touched" when that is certain, and "scan everything" otherwise:

- anything that changes the tree's shape (an entry made, removed or renamed: a copy-up from a lower layer is
  one) — the full scan builds the new listing, which the manifest logic in ``delta`` needs anyway;
- a queue overflow, a watch that could not be added, a seal that was thrown away, no watch yet (the first seal,
  or the first after a server restart).

Events are not read as they come: they wait in the kernel's queue (16,384 per instance by default) until the
next seal drains it, so a busy sandbox costs the server nothing between checkpoints; one that overflows the
queue falls back to a full scan, which is what every seal cost before.

inotify misses one kind of write: through a shared writable memory mapping (``mmap``) no ``IN_MODIFY`` is sent.
Such a write needs the file mapped from a descriptor opened for writing, and the mapping holds that open file:
when the last mapping goes, the file is closed and ``IN_CLOSE_WRITE`` is sent (measured). So the files mapped
shared-writable by the sandbox's processes at a seal (read from ``/proc/<pid>/maps`` while they are frozen) are
looked at too; a mapping gone since the last seal was reported by its close. Whatever is named, the seal still
copies only entries whose ctime moved.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cove.runtime.inotify import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_IGNORED,
    IN_MODIFY,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    add_watch,
    open_instance,
    read_events,
)

_CONTENT = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE
# The watches are root's, and root's limit (fs.inotify.max_user_watches) is shared by every sandbox and by the
# server's own watches: a sandbox with more directories than this is scanned whole at each seal instead.
MAX_WATCHED_DIRECTORIES = 20_000
_SHAPE = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
WATCHED = _CONTENT | _SHAPE  # what a directory's watch reports: its entries' content and its shape
log = logging.getLogger("cove.checkpoints")
_warned: set[str] = set()


def warn_once(limit: str, consequence: str) -> None:
    """Say once per server which kernel limit ran out: the fallback is correct, only slower, and an operator
    can raise the limit."""
    if limit not in _warned:
        _warned.add(limit)
        log.warning("out of inotify %s (sysctl fs.inotify.%s): %s", limit.split("_")[-1], limit, consequence)


class ChangeWatch:
    """inotify watches on every directory of one upper, drained at each seal (see the module docstring)."""

    def __init__(self, upper: Path) -> None:
        self._upper = upper
        self._fd = -1
        self._dirs: dict[int, bytes] = {}  # watch descriptor → directory, relative to the upper (b"" is its root)
        self._valid = False

    def changed(self, mapped: set[bytes] | None) -> set[bytes] | None:
        """The entries (paths relative to the upper) whose content or metadata may have changed since the last
        seal, or None when that is not known and the whole upper must be scanned. ``mapped``: the files the
        sandbox has mapped for writing now (None: could not be read). Call with the sandbox frozen.
        """
        dirty = self._drain()
        if dirty is None or mapped is None or not self._valid:
            return None
        return dirty | mapped

    def rewatch(self, directories: list[bytes]) -> None:
        """After a full scan (sandbox still frozen): watch every directory it listed, forget older events."""
        self._drain()
        self._valid = False
        if self._fd < 0:
            self._fd = open_instance()
            if self._fd < 0:
                warn_once("max_user_instances", "checkpoints of further sandboxes scan their whole upper")
                return
        if len(directories) >= MAX_WATCHED_DIRECTORIES:
            return  # stays invalid: a full scan each seal, rather than one sandbox taking the host's watches
        mask = WATCHED | IN_ONLYDIR
        for directory in [b"", *directories]:
            wd = add_watch(self._fd, os.path.join(bytes(self._upper), directory), mask)
            if wd < 0:
                if os.path.isdir(os.path.join(bytes(self._upper), directory)):
                    warn_once("max_user_watches", "checkpoints of big sandboxes scan their whole upper")
                return  # stays invalid: the next seal scans everything
            self._dirs[wd] = directory
        self._valid = True

    def invalidate(self) -> None:
        """The last seal was thrown away: the next one must scan everything."""
        self._valid = False

    def _drain(self) -> set[bytes] | None:
        """Read every queued event: the entries with content changes, or None if the shape changed."""
        dirty: set[bytes] | None = set()
        for wd, mask, name in read_events(self._fd) if self._fd >= 0 else ():
            if mask & IN_IGNORED:
                self._dirs.pop(wd, None)  # the directory is gone (its parent reports the removal)
            elif mask & (_SHAPE | IN_Q_OVERFLOW) or wd not in self._dirs:
                dirty = None
            elif dirty is not None and name:  # a directory's own event is also its parent's, named
                dirty.add(os.path.join(self._dirs[wd], name))
        return dirty

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._dirs.clear()
        self._valid = False


def mapped_for_writing(pids: list[int], binds: dict[bytes, bytes]) -> set[bytes] | None:
    """The files, as paths relative to the upper, that ``pids`` have mapped shared and writable.

    ``binds`` maps where the upper's directories appear in the sandbox (``b"/workspace"``) to where they are in
    the upper (``b"workspace"``). None when a process's mappings cannot be read (the caller scans everything).
    """
    found: set[bytes] = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", "rb") as maps:
                lines = maps.read().splitlines()
        except FileNotFoundError:
            continue  # exited: its mappings are gone, and its last writes were reported by IN_CLOSE_WRITE
        except OSError:
            return None
        for line in lines:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[1][1:2] == b"w" and fields[1][3:4] == b"s":
                found.add(_in_upper(fields[5].removesuffix(b" (deleted)"), binds))
    found.discard(b"\0")
    return found


def _in_upper(path: bytes, binds: dict[bytes, bytes]) -> bytes:
    for inside, upper in binds.items():
        if path.startswith(inside + b"/"):
            return upper + path[len(inside) :]
    return b"\0"  # not in the sandbox's files (a shared memory segment, /tmp)
