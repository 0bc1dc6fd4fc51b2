"""Connecting to unix sockets that live deep under ``$COVE_HOME``.

``sun_path`` holds about 108 bytes; a sandbox's sockets can sit at longer paths. Such a socket is reached
through ``/proc/self/fd/<dir fd>/<name>``, which is short whatever the directory's depth.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path

MAX_UNIX_PATH = 104
CONNECT_TIMEOUT = 10.0  # waiting for a listener whose backlog is full


async def connect_unix(path: Path) -> socket.socket:
    """A non-blocking unix stream socket connected to ``path``.

    A unix socket connects at once or not at all: while the listener's backlog is full (a burst of requests its
    process has not accepted yet), a non-blocking connect fails with EAGAIN, and the event loop's
    ``sock_connect`` takes that for a connect in progress and hands back a socket that is connected to nothing.
    So the connect is made here, and tried again a little later until ``CONNECT_TIMEOUT``."""
    target = str(path)
    directory: int | None = None
    if len(target.encode()) >= MAX_UNIX_PATH:
        directory = os.open(path.parent, os.O_PATH)
        target = f"/proc/self/fd/{directory}/{path.name}"
    try:
        pause = 0.001
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(target)
                return sock
            except BlockingIOError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
            except BaseException:
                sock.close()
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
    finally:
        if directory is not None:
            os.close(directory)


def bind_unix(path: Path) -> socket.socket:
    """A unix stream socket bound at ``path`` (replacing a stale one there), not yet listening."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.name, dir_fd=directory)
        sock.bind(f"/proc/self/fd/{directory}/{path.name}")
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(directory)
    return sock
