"""Directory change notifications through Linux inotify (ctypes; no dependency), with polling as a fallback.

The server follows each agent session's journal as it grows; inotify wakes it the moment the runner appends,
which keeps event latency low without a busy poll.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
from collections.abc import Callable, Iterator

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ISDIR = 0x40000000
IN_ONLYDIR = 0x01000000
_EVENT = struct.Struct("iIII")
POLL_INTERVAL = 0.05

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def open_instance() -> int:
    """A non-blocking inotify descriptor, or -1 when there is none to be had (no libc, out of instances)."""
    if _libc is None:
        return -1
    return int(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))


def add_watch(fd: int, path: bytes, mask: int) -> int:
    """The watch descriptor, or -1 (gone, or out of watches)."""
    assert _libc is not None
    return int(_libc.inotify_add_watch(fd, path, mask))


def remove_watch(fd: int, wd: int) -> None:
    assert _libc is not None
    _libc.inotify_rm_watch(fd, wd)


def read_events(fd: int) -> Iterator[tuple[int, int, bytes]]:
    """(watch descriptor, mask, name) of every event queued on a non-blocking inotify ``fd``."""
    while True:
        try:
            data = os.read(fd, 256 * 1024)
        except BlockingIOError:
            return
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            yield wd, mask, data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length


class DirectoryWatcher:
    """Calls a callback whenever a file in a watched directory is created or written."""

    def __init__(self) -> None:
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._by_key: dict[str, int] = {}
        self._polled: dict[str, Callable[[], None]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._fd = open_instance()
        if self._fd >= 0:
            asyncio.get_running_loop().add_reader(self._fd, self._drain)

    def watch(self, key: str, directory: int | None, callback: Callable[[], None]) -> None:
        """Watch the open ``directory`` (a descriptor: the caller opened it safely, and closes it) under ``key``;
        with no descriptor, or no inotify, ``callback`` is polled instead."""
        if self._fd >= 0 and directory is not None:
            # Through /proc/self/fd: the watch lands on the very directory the descriptor holds, never on what
            # a path might name by the time it is resolved again.
            wd = add_watch(self._fd, f"/proc/self/fd/{directory}".encode(), IN_MODIFY | IN_CREATE | IN_MOVED_TO)
            if wd >= 0:
                self._callbacks[wd] = callback
                self._by_key[key] = wd
                return
        self._polled[key] = callback
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    def unwatch(self, key: str) -> None:
        self._polled.pop(key, None)
        wd = self._by_key.pop(key, None)
        if wd is not None and self._fd >= 0:
            self._callbacks.pop(wd, None)
            remove_watch(self._fd, wd)

    def _drain(self) -> None:
        woken = {wd for wd, _mask, _name in read_events(self._fd)}
        for wd in woken:
            callback = self._callbacks.get(wd)
            if callback is not None:
                callback()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            for callback in list(self._polled.values()):
                callback()

    def close(self) -> None:
        if self._fd >= 0:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._poller is not None:
            self._poller.cancel()
