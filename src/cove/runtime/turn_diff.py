"""A turn's changes as people read them: each file added, modified, deleted or renamed, with its lines added and
deleted, and the unified diff of the turn, in pages.

The states come from ``turn_store`` (the content of both sides is kept there, written by the server): a
file that vanished and one that appeared with the same content in the same turn is a rename (a content digest
compared: costs nothing); anything whose content was not kept or is not text is named with why, never dumped.
The diff reads as ``git diff`` writes it (``diff --git``, ``new file mode``, ``rename from``, ``Binary files …
differ``), so ``git apply`` takes the text parts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from cove.runtime import linediff
from cove.runtime.turn_store import FILE, LARGE, LINK, UNKEPT, UNREADABLE, State

ADDED, MODIFIED, DELETED, RENAMED = "added", "modified", "deleted", "renamed"
# Why a file's lines are not in the diff (and its additions and deletions are 0).
BINARY, NOT_KEPT = "binary", "not_kept"
_SKIPPED = {LARGE: LARGE, UNREADABLE: UNREADABLE, UNKEPT: NOT_KEPT}
_WHY = {
    BINARY: "Binary files {a} and {b} differ",
    LARGE: "Files {a} and {b} differ (over 1 MiB: not compared)",
    UNREADABLE: "Files {a} and {b} differ (not a file the server reads: a FIFO, a device, several hard links)",
    NOT_KEPT: "Files {a} and {b} differ (not kept: the turn or the sandbox changed too much to keep every file)",
}
Content = Callable[[str], bytes]  # a kept content, by its digest


@dataclass(frozen=True)
class Change:
    path: str  # relative to /workspace, as the filesystem has it (non-UTF-8 bytes as surrogates)
    change: str
    additions: int
    deletions: int
    old_path: str | None
    skipped: str | None
    before: State | None
    after: State | None

    def public(self) -> dict[str, Any]:
        """The entry of ``files_changed``: paths readable as UTF-8 (other bytes as ``\\xNN``)."""
        entry: dict[str, Any] = {
            "path": display(self.path),
            "change": self.change,
            "additions": self.additions,
            "deletions": self.deletions,
        }
        if self.old_path is not None:
            entry["old_path"] = display(self.old_path)
        if self.skipped is not None:
            entry["skipped"] = self.skipped
        return entry

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        sides = {side: State(**data[side]) if data[side] is not None else None for side in ("before", "after")}
        return cls(**{**data, **sides})


def display(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _content(state: State | None, content: Content) -> bytes:
    if state is None or state.digest is None:
        return b""
    return content(state.digest)


def _why_skipped(before: State | None, after: State | None, content: Content) -> str | None:
    for state in (before, after):
        if state is not None and state.kind in _SKIPPED:
            return _SKIPPED[state.kind]
    if any(state is not None and linediff.is_binary(_content(state, content)) for state in (before, after)):
        return BINARY
    return None


def _lines(before: State | None, after: State | None, content: Content) -> linediff.FileDiff | None:
    """The hunks of a text file's change; None when ``diff`` gave up."""
    if before is None:
        return linediff.whole(_content(after, content), added=True)
    if after is None:
        return linediff.whole(_content(before, content), added=False)
    assert before.digest is not None and after.digest is not None
    return linediff.changed(content(before.digest), content(after.digest))


def summarize(changes: Iterable[tuple[str, State | None, State | None]], content: Content) -> list[Change]:
    """What each changed path became, renames paired, sorted by path."""
    found = list(changes)
    appeared = {digest: path for path, before, after in found if before is None and (digest := _moveable(after))}
    renamed: dict[str, str] = {}  # new path → old path
    for path, before, after in found:
        if after is None and (digest := _moveable(before)):
            target = appeared.pop(digest, None)
            if target is not None:
                renamed[target] = path
    gone = set(renamed.values())
    result = []
    for path, before, after in found:
        if path in gone:
            continue
        if path in renamed:
            result.append(Change(path, RENAMED, 0, 0, renamed[path], None, before, after))
            continue
        kind = ADDED if before is None else DELETED if after is None else MODIFIED
        skipped = _why_skipped(before, after, content)
        hunks = _lines(before, after, content) if skipped is None else None
        if skipped is None and hunks is None:
            skipped = LARGE  # diff's deadline passed: as good as too large to compare
        counts = (hunks.additions, hunks.deletions) if hunks is not None else (0, 0)
        result.append(Change(path, kind, *counts, None, skipped, before, after))
    return sorted(result, key=lambda change: change.path)


def _moveable(state: State | None) -> str | None:
    """The digest a rename of this file can be told by: its content kept, and not empty (every empty file is
    alike); None for any other."""
    if state is None or state.kind not in (FILE, LINK) or state.size == 0 or state.digest is None:
        return None
    return f"{state.kind}:{state.digest}"


def _quoted(prefix: str, path: str) -> str:
    """A path as git writes it in a diff's header: C-quoted when it holds a quote, a backslash or a control."""
    shown = prefix + display(path)
    if not any(c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F for c in shown):
        return shown
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}
    return '"' + "".join(escapes.get(c, f"\\{ord(c):03o}" if ord(c) < 0x20 else c) for c in shown) + '"'


def _mode(state: State) -> str:
    return "120000" if state.kind == LINK else "100644"


def unified(change: Change, content: Content) -> bytes:
    """One file's part of the turn's diff."""
    old = change.old_path if change.old_path is not None else change.path
    a, b = _quoted("a/", old), _quoted("b/", change.path)
    lines = [f"diff --git {a} {b}"]
    if change.change == ADDED and change.after is not None:
        lines.append(f"new file mode {_mode(change.after)}")
    elif change.change == DELETED and change.before is not None:
        lines.append(f"deleted file mode {_mode(change.before)}")
    elif change.change == RENAMED:
        lines += ["similarity index 100%", f"rename from {_quoted('', old)}", f"rename to {_quoted('', change.path)}"]
        return ("\n".join(lines) + "\n").encode()
    a_side = "/dev/null" if change.change == ADDED else a
    b_side = "/dev/null" if change.change == DELETED else b
    if change.skipped is not None:
        lines.append(_WHY[change.skipped].format(a=a_side, b=b_side))
        return ("\n".join(lines) + "\n").encode()
    hunks = _lines(change.before, change.after, content)
    body = hunks.hunks if hunks is not None else b""
    if not body:
        return ("\n".join(lines) + "\n").encode()  # an empty file added or deleted: a header alone, as git writes
    lines += [f"--- {a_side}", f"+++ {b_side}"]
    return ("\n".join(lines) + "\n").encode() + body


@dataclass(frozen=True)
class Page:
    text: bytes
    files: list[int]  # the changes this page shows (a part of) by their index
    next_cursor: tuple[int, int] | None  # (change, line within its diff) where the next page starts


def page(changes: list[Change], content: Content, cursor: tuple[int, int], limit: int) -> Page:
    """The diff from ``cursor`` on, whole lines up to ``limit`` bytes (at least one line: a page always moves)."""
    index, line = cursor
    chunks: list[bytes] = []
    files: list[int] = []
    size = 0
    while index < len(changes):
        lines = unified(changes[index], content).splitlines(keepends=True)
        while line < len(lines):
            if chunks and size + len(lines[line]) > limit:
                return Page(b"".join(chunks), files, (index, line))
            if not files or files[-1] != index:
                files.append(index)
            chunks.append(lines[line])
            size += len(lines[line])
            line += 1
        index, line = index + 1, 0
    return Page(b"".join(chunks), files, None)
