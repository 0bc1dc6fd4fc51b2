"""Where Claude Code keeps its conversations, so that a resume finds its transcript.

The CLI writes ``$CLAUDE_CONFIG_DIR`` (default ``~/.claude``) ``/projects/<project dir>/<session id>.jsonl``,
the project dir being the realpath of the cwd with every non-alphanumeric character replaced by ``-``
(paths longer than 200 characters are cut and suffixed with a hash). Before resuming, the runner makes sure
the transcript sits in the directory of the cwd it is about to use. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

__all__ = [
    "claude_config_dir",
    "ensure_in_project",
    "find_transcript",
    "last_total_cost",
    "project_dir",
]

_NON_ALNUM = re.compile(r"[^a-zA-Z0-9]")
_MAX_NAME = 200


def claude_config_dir() -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else Path.home() / ".claude"


def _js_hash36(text: str) -> str:
    """The 32-bit string hash (base 36) used for over-long project names, as the SDK computes it."""
    h = 0
    for ch in text:
        h = ((h << 5) - h + ord(ch)) & 0xFFFFFFFF
    if h >= 0x80000000:
        h -= 0x100000000
    h = abs(h)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        h, r = divmod(h, 36)
        out = digits[r] + out
        if h == 0:
            return out


def project_dir(cwd: str) -> Path:
    """The project directory the CLI uses for ``cwd``."""
    real = os.path.realpath(cwd)
    name = _NON_ALNUM.sub("-", real)
    projects = claude_config_dir() / "projects"
    if len(name) <= _MAX_NAME:
        return projects / name
    # The CLI's own hash for long names may differ from the SDK's: prefer a directory it already made.
    prefix = name[:_MAX_NAME] + "-"
    if projects.is_dir():
        for entry in projects.iterdir():
            if entry.is_dir() and entry.name.startswith(prefix):
                return entry
    return projects / f"{name[:_MAX_NAME]}-{_js_hash36(real)}"


def find_transcript(claude_session_id: str, cwd: str) -> Path | None:
    """The newest copy of ``claude_session_id``'s transcript in any project dir (``cwd``'s wins a tie).

    Newest, because after a ``configure(cwd=...)`` the conversation goes on in the new project's copy while
    the old project's copy goes stale.
    """
    if not claude_session_id or "/" in claude_session_id or claude_session_id in (".", ".."):
        return None
    filename = f"{claude_session_id}.jsonl"
    own = project_dir(cwd) / filename
    candidates = [own] if own.is_file() else []
    projects = claude_config_dir() / "projects"
    if projects.is_dir():
        candidates += [p for p in sorted(projects.glob(f"*/{filename}")) if p != own and p.is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime_ns)  # max() keeps the first of equals


def ensure_in_project(claude_session_id: str, cwd: str) -> Path | None:
    """Make the transcript resumable from ``cwd``; return where it now is, or None when it exists nowhere.

    A transcript found under another project is copied (the original stays where it was, untouched).
    """
    found = find_transcript(claude_session_id, cwd)
    if found is None:
        return None
    target = project_dir(cwd) / found.name
    if found != target:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".jsonl.tmp")
        shutil.copyfile(found, tmp)
        tmp.replace(target)
    return target


def last_total_cost(transcript: Path) -> float:
    """The conversation's cost so far, as the CLI recorded it (its ``cost-state`` lines); 0 if none.

    The CLI restores this running total on resume and reports it in every result's ``total_cost_usd``, so
    the runner needs it to tell what one turn cost.
    """
    total = 0.0
    try:
        with open(transcript, "rb") as f:
            for line in f:
                if b'"cost-state"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                value = record.get("totalCostUSD") if isinstance(record, dict) else None
                if record.get("type") == "cost-state" and isinstance(value, int | float):
                    total = float(value)
    except OSError:
        return 0.0
    return total
