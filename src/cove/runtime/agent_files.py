"""An agent session's files in its sandbox, as the host server reaches them.

The runner keeps its session under ``/run/cove/agents/<session id>/`` inside the sandbox: ``events.jsonl`` (the
journal, which the server ingests) and ``control.sock`` (where the server sends prompts, interrupts and
configuration). The server only ever reads the journal and connects to the socket, and does both through
``safe_open``: beneath the sandbox's run directory on the host, through no link, only a regular file or a socket
owned by the sandbox's uid, and the socket's peer checked to be that uid. It never writes there: the session's
directory and its ``config.json`` are made inside the sandbox, by the supervisor (``prepare_agent``).

The journal is attacker-controlled input of unbounded size, so it is read in bounded pieces: at most
``READ_LIMIT`` bytes a call, and a line longer than ``MAX_EVENT_BYTES`` is skipped (and reported), remembering
where the skip started so a line that never ends is scanned once, not again at every wake-up.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cove.runtime import safe_open
from cove.runtime.safe_open import UnsafePath

AGENTS = "agents"
JOURNAL = "events.jsonl"
CONTROL = "control.sock"
MAX_EVENT_BYTES = 16 * 1024 * 1024
READ_LIMIT = MAX_EVENT_BYTES
_SESSION_ID = re.compile(r"ses_[0-9a-f]{16}")


def session_dir(session_id: str) -> str:
    """The session's directory, relative to the sandbox's run directory (``/run/cove`` inside)."""
    if not _SESSION_ID.fullmatch(session_id):
        raise ValueError(f"not a session id: {session_id!r}")
    return f"{AGENTS}/{session_id}"


@dataclass(frozen=True)
class JournalRead:
    lines: list[bytes]
    offset: int  # just past the last complete line returned (or skipped)
    skipped: int = 0  # bytes of over-long lines passed over


class JournalTail:
    """One session's journal, read from the host through one descriptor, opened safely the first time the file
    is there and kept (whatever is renamed over the path later, this stays the file that passed the checks)."""

    def __init__(self, run_dir: Path, uid: int, session_id: str) -> None:
        self._run_dir = run_dir
        self._uid = uid
        self._path = f"{session_dir(session_id)}/{JOURNAL}"
        self._fd = -1
        self._skipping_from: int | None = None  # an over-long line starts here; its end not seen yet
        self.refused: str | None = None  # why the journal cannot be read, once that is certain

    def _open(self) -> bool:
        if self._fd >= 0:
            return True
        if self.refused is not None:
            return False
        try:
            with safe_open.opened(safe_open.open_root(self._run_dir)) as root:
                self._fd = safe_open.open_file(root, self._path, self._uid)
        except FileNotFoundError:
            return False  # the runner has not made it yet
        except UnsafePath as exc:
            self.refused = str(exc)
            return False
        return True

    def size(self) -> int:
        """The journal's size now (0 while it cannot be read)."""
        return os.fstat(self._fd).st_size if self._open() else 0

    def read(self, offset: int) -> JournalRead:
        """Complete lines from ``offset`` (a line being written is left for the next call)."""
        if not self._open():
            return JournalRead([], offset)
        if self._skipping_from is not None:
            return self._skip(offset)
        data = safe_open.read_at(self._fd, offset, READ_LIMIT)
        end = data.rfind(b"\n")
        if end == -1:
            if len(data) < READ_LIMIT:
                return JournalRead([], offset)
            self._skipping_from = offset
            return self._skip(offset)
        lines = [line for line in data[:end].split(b"\n") if line.strip()]
        return JournalRead(lines, offset + end + 1)

    def _skip(self, offset: int) -> JournalRead:
        """Pass over the over-long line at ``offset``: only the bytes not scanned before are read."""
        assert self._skipping_from is not None
        position = self._skipping_from
        while True:
            data = safe_open.read_at(self._fd, position, READ_LIMIT)
            newline = data.find(b"\n")
            if newline >= 0:
                self._skipping_from = None
                end = position + newline + 1
                return JournalRead([], end, skipped=end - offset)
            position += len(data)
            if len(data) < READ_LIMIT:
                self._skipping_from = position
                return JournalRead([], offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def open_session_dir(run_dir: Path, uid: int, session_id: str) -> int:
    """The session's directory, opened safely (to watch it through ``safe_open.fd_path``)."""
    with safe_open.opened(safe_open.open_root(run_dir)) as root:
        return safe_open.open_directory(root, session_dir(session_id), uid)


async def connect_control(
    run_dir: Path, uid: int, session_id: str, *, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the runner's control socket: the socket file checked, then its peer (the process that
    listens there must run as the sandbox's uid, not be some other sandbox's or the host's)."""
    with safe_open.opened(safe_open.open_root(run_dir)) as root:
        fd = safe_open.socket_path(root, f"{session_dir(session_id)}/{CONTROL}", uid)
    with safe_open.opened(fd):
        reader, writer = await asyncio.open_unix_connection(safe_open.fd_path(fd), limit=limit)
    peer = safe_open.peer_uid(writer.get_extra_info("socket"))
    if peer != uid:
        writer.close()
        raise UnsafePath(f"the control socket of {session_id} is served by uid {peer}, not the sandbox's")
    return reader, writer
