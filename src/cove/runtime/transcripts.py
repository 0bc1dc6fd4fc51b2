"""A conversation's Claude Code transcript in a sandbox, read from the host for Cove's stored copy.

The CLI writes ``~/.claude/projects/<project dir>/<claude session id>.jsonl`` and only appends to it, so after
every turn Cove reads just the lines added since its last save: the last bytes saved are kept and compared, and a
file that changed instead of growing is read whole again. The sandbox owns that tree, so the file is found and
opened through ``safe_open`` (beneath the sandbox's home, through no link, a regular file of the sandbox's uid
with one link) and read through its descriptor: a transcript replaced by a link to a host secret, or by a FIFO, is
refused, never read. Its size is bounded by ``MAX_TRANSCRIPT_BYTES``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from cove.runtime import safe_open
from cove.runtime.safe_open import UnsafePath

PROJECTS = ".claude/projects"
MAX_PROJECTS = 256  # project directories looked through (one per working directory the agent used)
MAX_TRANSCRIPT_BYTES = 64 * 1024 * 1024
_CHECK = 256


class TranscriptTooLarge(UnsafePath):
    """A transcript over ``MAX_TRANSCRIPT_BYTES``: Cove keeps the copy it has and stores no more of it."""


@dataclass(frozen=True)
class SavedTranscript:
    project: str
    size: int
    end: bytes  # the saved content's last bytes, to notice a file that changed instead of growing


@dataclass(frozen=True)
class TranscriptRead:
    project: str
    text: str  # the whole file, when ``tail`` is None
    tail: str | None  # what was appended since ``saved`` (the previous save), when that is all that changed
    saved: SavedTranscript


def _newest(home: Path, uid: int, name: str) -> tuple[int, str] | None:
    """The newest ``<project>/<name>`` under the projects directory: (open descriptor, project)."""
    found: tuple[int, str, int] | None = None
    with safe_open.opened(safe_open.open_root(home)) as root:
        try:
            projects = safe_open.open_directory(root, PROJECTS, uid)
        except FileNotFoundError:
            return None
        with safe_open.opened(projects), os.scandir(projects) as entries:
            for entry in islice(entries, MAX_PROJECTS):
                if not entry.is_dir(follow_symlinks=False):
                    continue
                try:
                    fd = safe_open.open_file(projects, f"{entry.name}/{name}", uid)
                except (FileNotFoundError, NotADirectoryError, UnsafePath):
                    continue
                mtime = os.fstat(fd).st_mtime_ns
                if found is None or mtime > found[2]:
                    if found is not None:
                        os.close(found[0])
                    found = (fd, entry.name, mtime)
                else:
                    os.close(fd)
    return (found[0], found[1]) if found is not None else None


def exists(home: Path, uid: int, claude_session_id: str) -> bool:
    """Whether the sandbox holds this conversation's transcript, in any project."""
    newest = _newest(home, uid, f"{claude_session_id}.jsonl")
    if newest is None:
        return False
    os.close(newest[0])
    return True


def grew_by(home: Path, uid: int, saved: SavedTranscript, name: str) -> int:
    """How much the saved transcript grew (to choose where to read it); 0 when it is gone or unreadable."""
    try:
        with safe_open.opened(safe_open.open_root(home)) as root:
            fd = safe_open.open_file(root, f"{PROJECTS}/{saved.project}/{name}", uid)
    except OSError:
        return 0
    with safe_open.opened(fd):
        return os.fstat(fd).st_size - saved.size


def read(home: Path, uid: int, name: str, saved: SavedTranscript | None) -> TranscriptRead | None:
    """The newest transcript called ``name``: only what was appended since ``saved`` when it simply grew."""
    newest = _newest(home, uid, name)
    if newest is None:
        return None
    fd, project = newest
    with safe_open.opened(fd):
        size = os.fstat(fd).st_size
        if size > MAX_TRANSCRIPT_BYTES:
            raise TranscriptTooLarge(f"transcript {project}/{name} is {size} bytes, over {MAX_TRANSCRIPT_BYTES}")
        if saved is not None and saved.project == project:
            start = max(0, saved.size - _CHECK)
            data = safe_open.read_at(fd, start, size - start)
            end = data.rfind(b"\n") + 1  # whole lines only: the CLI may be mid-write
            if data[: saved.size - start] == saved.end and end >= saved.size - start:
                record = SavedTranscript(project, start + end, data[max(0, end - _CHECK) : end])
                return TranscriptRead(project, "", data[saved.size - start : end].decode(errors="replace"), record)
        data = safe_open.read_at(fd, 0, size)
    size = data.rfind(b"\n") + 1
    record = SavedTranscript(project, size, data[max(0, size - _CHECK) : size])
    return TranscriptRead(project, data[:size].decode(errors="replace"), None, record)
