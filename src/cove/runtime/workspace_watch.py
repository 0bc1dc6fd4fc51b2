"""Which files of a sandbox's workspace changed since the last look: a walk and an inotify watch, both safe.

The workspace is the sandbox's to shape while the server looks at it, so every directory is opened beneath the one
listing it (``openat2``: no link followed, the sandbox's uid checked) and watched through that descriptor
(``/proc/self/fd``), never by a path the sandbox could redirect meanwhile. A directory is watched before it is
listed: whatever is made in it after the listing is reported by the watch.

The watch names the entries written, made, removed or renamed in every watched directory, as
``runtime.changes.ChangeWatch`` does for checkpoints — but here a turn's common changes are taken as they come
(a file made, written or removed: a candidate; a directory made: watched and listed at once) and only what
cannot be followed that way makes the caller scan everything: a directory renamed or moved (every path under it
changed), a queue overflow, or more directories than the server lets one sandbox watch. Events wait in the
kernel's queue until the next ``drain``: a sandbox costs the server nothing between turns.

``.git`` directories are neither watched nor listed: what git keeps there is not what a person reviews.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cove.runtime import safe_open
from cove.runtime.changes import MAX_WATCHED_DIRECTORIES, WATCHED, warn_once
from cove.runtime.inotify import (
    IN_CREATE,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    add_watch,
    open_instance,
    read_events,
)
from cove.runtime.safe_open import UnsafePath

SKIPPED = ".git"


class Unfollowable(Exception):
    """The watch cannot say what changed (see the module docstring): scan everything."""


@dataclass(frozen=True, slots=True)
class Seen:
    """A non-directory entry as a walk found it: kind (``f`` regular file, ``l`` link, ``w`` an overlay's whiteout,
    ``o`` anything else), inode and ctime — enough to tell, at the next walk, whether it may have changed."""

    kind: str
    inode: int
    ctime_ns: int


def _kind(st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return "f"
    if stat.S_ISLNK(st.st_mode):
        return "l"
    return "w" if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else "o"


def skipped(path: str) -> bool:
    return SKIPPED in path.split("/")


def walk(
    directory: int, uid: int, prefix: str = "", on_directory: Callable[[int, str], None] | None = None
) -> Iterator[tuple[str, Seen]]:
    """Every non-directory entry beneath the open ``directory`` (paths relative to it, under ``prefix``), with
    what it is. ``on_directory(fd, path)`` is called for each directory (the first included) before it is
    listed. A directory that is not what it should be (a link swapped in, another uid's) is passed over."""
    stack = [(os.dup(directory), prefix)]
    try:
        while stack:
            fd, path = stack.pop()
            try:
                if on_directory is not None:
                    on_directory(fd, path)
                with os.scandir(fd) as entries:
                    for entry in entries:
                        child = f"{path}/{entry.name}" if path else entry.name
                        if entry.name == SKIPPED:
                            continue
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue  # gone since it was listed
                        if not stat.S_ISDIR(st.st_mode):
                            yield child, Seen(_kind(st), st.st_ino, st.st_ctime_ns)
                            continue
                        with contextlib.suppress(OSError):  # UnsafePath, or gone
                            stack.append((safe_open.open_directory(fd, entry.name, uid), child))
            finally:
                os.close(fd)
    finally:
        for fd, _path in stack:
            os.close(fd)


class WorkspaceWatch:
    """inotify on every directory of one tree (``root``, an open directory, and the sandbox's ``uid``)."""

    def __init__(self, root: int, uid: int) -> None:
        self._root = root
        self._uid = uid
        self._fd = -1
        self._dirs: dict[int, str] = {}  # watch descriptor → directory (relative to the root; "" is the root)

    def start(self) -> Iterator[tuple[str, Seen]]:
        """Watch every directory again from scratch; yields every entry of the tree, as ``walk`` does. Raises
        ``Unfollowable`` if the tree cannot be watched (out of inotify instances or watches, too many
        directories): then every ``drain`` does too, until the next ``start``."""
        self.close()
        self._fd = open_instance()
        if self._fd < 0:
            warn_once("max_user_instances", "the agent turns of further sandboxes walk their workspace at each seal")
            raise Unfollowable("no inotify instance to be had")
        yield from walk(self._root, self._uid, on_directory=self._watch)

    def _watch(self, fd: int, path: str) -> None:
        if self._fd < 0 or len(self._dirs) >= MAX_WATCHED_DIRECTORIES:
            self.close()
            raise Unfollowable(f"more than {MAX_WATCHED_DIRECTORIES} directories")
        # Through the descriptor's magic link (followed: it names the very directory that was opened and checked).
        wd = add_watch(self._fd, safe_open.fd_path(fd).encode(), WATCHED | IN_ONLYDIR)
        if wd < 0:
            self.close()
            warn_once("max_user_watches", "the agent turns of big sandboxes walk their workspace at each seal")
            raise Unfollowable("out of inotify watches")
        self._dirs[wd] = path

    def drain(self) -> set[str]:
        """The paths (relative to the root) that may have changed since the last ``drain`` or ``start``: files
        written, made or removed, and every entry of a directory made since (which is watched from now on)."""
        if self._fd < 0:
            raise Unfollowable("not watching")
        changed: set[str] = set()
        made: list[str] = []
        for wd, mask, name in read_events(self._fd):
            if mask & IN_Q_OVERFLOW:
                raise Unfollowable("the event queue overflowed")
            if mask & IN_IGNORED:
                self._dirs.pop(wd, None)  # the directory is gone (its parent reported its removal)
                continue
            parent = self._dirs.get(wd)
            if parent is None or not name:
                continue
            path = f"{parent}/{os.fsdecode(name)}" if parent else os.fsdecode(name)
            if skipped(path):
                continue
            if not mask & IN_ISDIR:
                changed.add(path)
            elif mask & (IN_MOVED_FROM | IN_MOVED_TO):
                raise Unfollowable(f"directory {path} was moved")
            elif mask & IN_CREATE:
                made.append(path)
        for path in made:
            changed.update(found for found, _seen in self._walk_made(path))
        return changed

    def _walk_made(self, path: str) -> Iterator[tuple[str, Seen]]:
        try:
            fd = safe_open.open_directory(self._root, path, self._uid)
        except (OSError, UnsafePath):
            return  # gone again, or not a directory of the sandbox's: its removal is reported
        with safe_open.opened(fd):
            yield from walk(fd, self._uid, path, on_directory=self._watch)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._dirs.clear()
