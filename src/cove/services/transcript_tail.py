"""Reading a Claude Code transcript for Cove's stored copy: the whole file once, then only what was appended.

Claude Code only appends to a conversation's JSONL transcript, so after every turn Cove reads and stores just
the lines added since its last save (a long conversation used to be read and written whole after each turn).
The last bytes saved are kept and compared: a file that changed instead of growing is read whole again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SavedTranscript:
    path: Path
    size: int
    end: bytes  # the saved content's last bytes, to notice a file that changed instead of growing


@dataclass(frozen=True)
class TranscriptRead:
    path: Path
    text: str  # the whole file, when ``tail`` is None
    tail: str | None  # what was appended since ``saved`` (the previous save), when that is all that changed
    saved: SavedTranscript


_CHECK = 256


def grew_by(saved: SavedTranscript) -> int:
    try:
        return saved.path.stat().st_size - saved.size
    except FileNotFoundError:
        return 0


def read_transcript(projects: Path, name: str, saved: SavedTranscript | None) -> TranscriptRead | None:
    """The newest transcript called ``name``: only what was appended since ``saved`` when it simply grew."""
    candidates = sorted(projects.glob(f"*/{name}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        return None
    path = candidates[-1]
    with open(path, "rb") as file:
        if saved is not None and saved.path == path:
            start = max(0, saved.size - _CHECK)
            file.seek(start)
            data = file.read()
            end = data.rfind(b"\n") + 1  # whole lines only: the CLI may be mid-write
            if data[: saved.size - start] == saved.end and end >= saved.size - start:
                size = start + end
                record = SavedTranscript(path, size, data[max(0, end - _CHECK) : end])
                return TranscriptRead(path, "", data[saved.size - start : end].decode(errors="replace"), record)
            file.seek(0)
        data = file.read()
    size = data.rfind(b"\n") + 1
    record = SavedTranscript(path, size, data[max(0, size - _CHECK) : size])
    return TranscriptRead(path, data[:size].decode(errors="replace"), None, record)
