"""The agent session journal: ``events.jsonl``, one JSON event per line, append-only.

The agent runner is the journal's only writer; when it dies by a signal without writing ``exit``, the server
closes the session with an ``exit`` of its own (it never writes into a sandbox). Readers only ever consume
*complete* lines, so a line is visible to nobody until its trailing newline has been written and flushed.

Every event carries ``seq`` (1, 2, 3… without gaps, continued across runner restarts on the same file),
``session_id``, ``type`` and ``time`` (RFC 3339, UTC). Standard library only: this runs inside the sandbox.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

__all__ = [
    "Journal",
    "read_events",
    "read_last_event",
    "read_last_seq",
    "utc_now",
]

# Enough to hold the last line of any journal we write (events are small; prompts and tool output are the
# big ones). The tail scan keeps doubling its window until it finds a full line, so this is only a start.
_TAIL_CHUNK = 64 * 1024


def utc_now() -> str:
    """The current time as RFC 3339 UTC with microseconds, e.g. ``2025-01-31T12:00:00.123456Z``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _last_complete_line(f: IO[bytes]) -> tuple[bytes | None, int]:
    """(last complete line or None, byte length of the complete-lines prefix of the file)."""
    size = f.seek(0, os.SEEK_END)
    window = _TAIL_CHUNK
    while True:
        start = max(0, size - window)
        f.seek(start)
        data = f.read(size - start)
        end = data.rfind(b"\n")
        if end == -1:
            if start == 0:
                return None, 0
            window *= 2
            continue
        prev = data.rfind(b"\n", 0, end)
        if prev == -1 and start > 0:
            window *= 2
            continue
        return data[prev + 1 : end], start + end + 1


def read_last_event(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last complete event of the journal, or None when it holds none (or does not exist)."""
    try:
        with open(path, "rb") as f:
            line, _ = _last_complete_line(f)
    except FileNotFoundError:
        return None
    if line is None:
        return None
    event: dict[str, Any] = json.loads(line)
    return event


def read_last_seq(path: str | os.PathLike[str]) -> int:
    """The ``seq`` of the journal's last complete event; 0 for an empty or missing journal."""
    event = read_last_event(path)
    return int(event["seq"]) if event else 0


def read_lines(path: str | os.PathLike[str], offset: int = 0) -> tuple[list[bytes], int]:
    """Complete journal lines (exactly as written) from byte ``offset``, and the offset past the last one.

    A partially written last line is left for the next call: pass the returned offset back in to tail a file.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end == -1:
        return [], offset
    return [line for line in data[:end].split(b"\n") if line.strip()], offset + end + 1


def read_events(path: str | os.PathLike[str], offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete events from byte ``offset`` on, and the offset just past the last one returned."""
    lines, offset = read_lines(path, offset)
    return [json.loads(line) for line in lines], offset


@contextlib.contextmanager
def _locked(f: IO[bytes]) -> Iterator[None]:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class Journal:
    """Appends events to one session's journal, numbering them.

    Opening a journal that already holds events continues after its last ``seq``. A torn last line (the writer
    died mid-write) is cut off first, so that the next event starts on a line of its own.
    """

    def __init__(self, path: str | os.PathLike[str], session_id: str) -> None:
        self.path = Path(path)
        self.session_id = session_id
        self._file: IO[bytes] = open(self.path, "a+b")  # noqa: SIM115 - lives as long as the journal
        with _locked(self._file):
            line, complete = _last_complete_line(self._file)
            if complete != self._file.seek(0, os.SEEK_END):
                self._file.truncate(complete)
            self._seq = int(json.loads(line)["seq"]) if line else 0
        self._held: list[bytes] | None = None

    @property
    def last_seq(self) -> int:
        return self._seq

    def append(self, type: str, **fields: Any) -> dict[str, Any]:
        """Write one event (flushed before returning) and return it as written."""
        event: dict[str, Any] = {
            "seq": self._seq + 1,
            "session_id": self.session_id,
            "type": type,
            "time": utc_now(),
        }
        for key, value in fields.items():
            if key not in event:
                event[key] = value
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode() + b"\n"
        if self._held is not None:
            self._held.append(line)
        else:
            self._write(line)
        self._seq += 1
        return event

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Events appended inside are written at the end, in one write: readers see all of them at once (a
        turn's ``result`` and ``turn_complete`` reach the server in one batch, not two wake-ups apart)."""
        self._held = []
        try:
            yield
        finally:
            lines, self._held = self._held, None
            if lines:
                self._write(b"".join(lines))

    def _write(self, data: bytes) -> None:
        with _locked(self._file):
            self._file.write(data)
            self._file.flush()

    def close(self) -> None:
        self._file.close()
