"""Agent events as a person reads them: ``cove.format_event``, which ``make demo`` prints too, and
``cove.EventPrinter``, which ``cove agent`` prints with: the same lines, and text as it streams."""

from __future__ import annotations

import collections
import sys
from collections.abc import Mapping
from typing import Any, TextIO

MAX_LINE = 300


def _short(text: Any, limit: int = MAX_LINE) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _tool_input(block: Mapping[str, Any]) -> str:
    arguments = block.get("input") or {}
    for key in ("command", "file_path", "path", "pattern", "url"):
        if key in arguments:
            return _short(arguments[key], 120)
    return _short(arguments, 120)


def _tool_result(content: Any) -> str:
    if isinstance(content, list):
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return _short(content, 160)


def _changed(event: Mapping[str, Any]) -> str:
    """``, 3 files changed (+12 -4)``: what the turn changed under /workspace, when the server said."""
    files = event.get("files_changed")
    if not isinstance(files, list) or not files:
        return ""
    count = len(files) + int(event.get("files_changed_omitted") or 0)
    added = sum(int(f.get("additions", 0)) for f in files if isinstance(f, dict))
    deleted = sum(int(f.get("deletions", 0)) for f in files if isinstance(f, dict))
    return f", {count} file{'s' if count > 1 else ''} changed (+{added} -{deleted})"


def format_event(event: Mapping[str, Any], *, simulated: bool = False) -> str:
    """One event as text for a person: a line or a few, or ``""`` for Claude's bookkeeping (``system``,
    ``result``, ``stderr``…), which says nothing a reader needs. With ``simulated``, costs are marked as the
    model simulator's (see ``sandbox.agent.model_info()``).

    >>> def show(event):
    ...     if text := format_event(event):
    ...         print(text)
    >>> session = await sandbox.agent.start(prompt="Write fib.py", on_event=show)
    """
    return "\n".join(_lines(event, simulated))


def _lines(event: Mapping[str, Any], simulated: bool) -> list[str]:
    kind = event.get("type")
    if kind == "ready":
        return [f"● ready — conversation {event.get('claude_session_id')}"]
    if kind == "turn_started":
        return [f"▶ turn {event.get('turn')}: {_short(event.get('prompt'), 160)}"]
    if kind == "assistant":
        lines = []
        for block in event.get("content") or []:
            if block.get("type") == "text" and block.get("text", "").strip():
                lines.append(f"  claude: {_short(block['text'])}")
            elif block.get("type") == "tool_use":
                lines.append(f"  ⚙ {block.get('name')}: {_tool_input(block)}")
        return lines
    if kind == "user":
        return [
            f"  ↳ {_tool_result(block.get('content'))}"
            for block in event.get("content") or []
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]
    if kind == "turn_complete":
        usage = event.get("usage") or {}
        tokens = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        state = "interrupted" if event.get("interrupted") else ("failed" if event.get("is_error") else "complete")
        cost = f"${float(event.get('cost_usd') or 0):.4f}" + (" (simulated)" if simulated else "")
        return [f"✔ turn {event.get('turn')} {state} — {tokens} tokens, {cost}{_changed(event)}"]
    if kind == "interrupted":
        return [f"■ turn {event.get('turn')} interrupted"]
    if kind == "configured":
        return [f"⚙ configured: {', '.join(event.get('changes') or [])}"]
    if kind == "error":
        return [f"✖ {event.get('code')}: {_short(event.get('message'))}"]
    if kind == "exit":
        return [f"◼ exited with code {event.get('exit_code')}"]
    if kind == "permission_requested":
        return [
            f"  ? {event.get('tool_name')}: {_tool_input(event)} — waiting for approval ({event.get('request_id')})"
        ]
    if kind == "permission_resolved":
        mark, verb = ("✔", "allowed") if event.get("decision") == "allow" else ("✖", "denied")
        why = "" if event.get("reason") == "answered" else f" ({event.get('reason')})"
        return [f"  {mark} {verb} by {event.get('by')}{why}: {event.get('request_id')}"]
    return []


_PREFIX = {"text_delta": "  claude: ", "thinking_delta": "  thinking: "}
_KEPT_MESSAGES = 16  # messages whose streamed text is remembered, to leave it out of their assistant events


class EventPrinter:
    """Prints a session's events for a person as they come: what ``format_event`` says of each, and the text and
    thinking of ``text_delta`` / ``thinking_delta`` events as they stream, word by word — not printed again when
    the ``assistant`` event that holds the whole block follows.

    >>> session = await sandbox.agent.start(prompt="Write fib.py", on_event=EventPrinter())
    """

    def __init__(self, *, simulated: bool = False, out: TextIO | None = None) -> None:
        self._simulated = simulated
        self._out = out
        self._line: tuple[str, Any, Any] | None = None  # the block being streamed: (type, message id, index)
        self._streamed: collections.OrderedDict[Any, dict[tuple[str, Any], str]] = collections.OrderedDict()

    def __call__(self, event: Mapping[str, Any]) -> None:
        out = self._out or sys.stdout
        kind = event.get("type")
        if kind in _PREFIX and isinstance(event.get("text"), str):
            self._delta(out, str(kind), event)
        else:
            if kind == "assistant":
                event = self._unstreamed(event)
            if text := format_event(event, simulated=self._simulated):
                self._end_line(out)
                out.write(text + "\n")
        out.flush()

    def _delta(self, out: TextIO, kind: str, event: Mapping[str, Any]) -> None:
        message_id, index, text = event.get("message_id"), event.get("index"), str(event["text"])
        blocks = self._streamed.setdefault(message_id, {})
        self._streamed.move_to_end(message_id)
        while len(self._streamed) > _KEPT_MESSAGES:
            self._streamed.popitem(last=False)
        block = (kind, index)
        blocks[block] = blocks.get(block, "") + text
        if self._line != (kind, message_id, index):
            self._end_line(out)
            out.write(_PREFIX[kind])
            self._line = (kind, message_id, index)
        out.write(text.replace("\n", "\n" + " " * len(_PREFIX[kind])))

    def _end_line(self, out: TextIO) -> None:
        if self._line is not None:
            out.write("\n")
            self._line = None

    def _unstreamed(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """The assistant event without the blocks whose text was printed as it streamed."""
        streamed = self._streamed.get(event.get("message_id"))
        content = event.get("content")
        if not streamed or not isinstance(content, list):
            return event
        texts = set(streamed.values())
        kept = [block for block in content if not (isinstance(block, dict) and _block_text(block) in texts)]
        return {**event, "content": kept}


def _block_text(block: Mapping[str, Any]) -> Any:
    return block.get("text") if block.get("type") == "text" else block.get("thinking")
