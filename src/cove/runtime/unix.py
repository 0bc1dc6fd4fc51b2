"""Connecting to unix sockets that live deep under ``$COVE_HOME``.

``sun_path`` holds about 108 bytes; a sandbox's sockets can sit at longer paths. Such a socket is reached
through ``/proc/self/fd/<dir fd>/<name>``, which is short whatever the directory's depth.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

MAX_UNIX_PATH = 104


async def connect_unix(path: Path) -> socket.socket:
    """A non-blocking unix stream socket connected to ``path``."""
    target = str(path)
    directory: int | None = None
    if len(target.encode()) >= MAX_UNIX_PATH:
        directory = os.open(path.parent, os.O_PATH)
        target = f"/proc/self/fd/{directory}/{path.name}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, target)
    except BaseException:
        sock.close()
        raise
    finally:
        if directory is not None:
            os.close(directory)
    return sock


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
