"""Wire models for what an agent turn changed: ``files_changed`` entries and the turn's diff, a page at a time."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MAX_DIFF_PAGE = 4 * 1024 * 1024
DEFAULT_DIFF_PAGE = 256 * 1024


class FileChange(BaseModel):
    """One file a turn changed under /workspace (a ``files_changed`` entry)."""

    path: str = Field(description="Relative to /workspace (bytes that are not UTF-8 appear as \\xNN)")
    change: Literal["added", "modified", "deleted", "renamed"]
    additions: int = Field(description="Lines added (0 when skipped says why they were not counted)")
    deletions: int
    old_path: str | None = Field(None, description="Where a renamed file was")
    skipped: Literal["binary", "large", "unreadable", "not_kept"] | None = Field(
        None,
        description="Why its lines are not in the diff: it is not text, over 1 MiB, not a file the server "
        "reads (a FIFO, several hard links), or more than the server keeps per turn or sandbox",
    )


class TurnDiff(BaseModel):
    """A page of a turn's unified diff (``git diff``'s format): whole lines, up to the page's size."""

    turn: int
    files: list[FileChange] = Field(description="The files this page shows, or shows part of, in order")
    diff: str
    next_cursor: str | None = Field(description="Where the next page starts (?cursor=); null on the last page")
    total_files: int = Field(description="How many files the turn changed")
