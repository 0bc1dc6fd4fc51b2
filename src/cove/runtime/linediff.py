"""Unified diffs of one file's two versions, as ``git diff`` writes them, and their added and deleted lines.

Both versions are the server's own copies (the turn store's), never the sandbox's files: a changed file is
compared by GNU ``diff`` (C, with its own heuristics against expensive inputs; Python's ``difflib`` took 140 ms on
a 20,000-line file with 40 edits) on two files written for it in a private directory, in a process of its own and
within a deadline; a file that appeared or went away
is all additions or all deletions, written here without a process. Text is what has no NUL byte in its first
8,000 bytes, as git decides; other files are named, never dumped.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BINARY_PROBE = 8000
DIFF_TIMEOUT_S = 10.0
NO_NEWLINE = b"\\ No newline at end of file\n"


@dataclass(frozen=True)
class FileDiff:
    additions: int
    deletions: int
    hunks: bytes  # the hunks (``@@ … @@`` and their lines), without the file header


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_PROBE]


def _lines(data: bytes, sign: bytes) -> list[bytes]:
    lines = [sign + line + b"\n" for line in data.split(b"\n")]
    if data.endswith(b"\n"):
        lines.pop()  # the split's empty last piece
    else:
        lines.append(NO_NEWLINE)
    return lines


def whole(data: bytes, added: bool) -> FileDiff:
    """A file that appeared (``added``) or went away: every line added, or every line deleted."""
    if not data:
        return FileDiff(0, 0, b"")
    lines = _lines(data, b"+" if added else b"-")
    count = len(lines) - (lines[-1] == NO_NEWLINE)
    extent = "1" if count == 1 else f"1,{count}"  # a range of one line is written without its length, as diff does
    span = f"-0,0 +{extent}" if added else f"-{extent} +0,0"
    hunks = f"@@ {span} @@\n".encode() + b"".join(lines)
    return FileDiff(count if added else 0, 0 if added else count, hunks)


def changed(before: bytes, after: bytes) -> FileDiff | None:
    """The hunks between two texts, with three lines of context; None if ``diff`` gave up (its deadline)."""
    with tempfile.TemporaryDirectory(prefix="cove-diff-") as directory:
        sides = [Path(directory, "a"), Path(directory, "b")]
        for side, data in zip(sides, (before, after), strict=True):
            side.write_bytes(data)
        try:
            done = subprocess.run(
                ["diff", "-U3", "--label", "a", "--label", "b", "--", *map(str, sides)],
                capture_output=True,
                timeout=DIFF_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
    if done.returncode not in (0, 1):
        return None
    hunks = done.stdout.split(b"\n", 2)[2] if done.returncode == 1 else b""  # past the --- and +++ lines
    additions = deletions = 0
    for line in hunks.splitlines():
        if line[:1] == b"+":
            additions += 1
        elif line[:1] == b"-":
            deletions += 1
    return FileDiff(additions, deletions, hunks)
