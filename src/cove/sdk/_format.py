"""Agent events as a person reads them: ``cove.format_event``, which ``cove agent`` and ``make demo`` print too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
        return [f"✔ turn {event.get('turn')} {state} — {tokens} tokens, {cost}"]
    if kind == "interrupted":
        return [f"■ turn {event.get('turn')} interrupted"]
    if kind == "configured":
        return [f"⚙ configured: {', '.join(event.get('changes') or [])}"]
    if kind == "error":
        return [f"✖ {event.get('code')}: {_short(event.get('message'))}"]
    if kind == "exit":
        return [f"◼ exited with code {event.get('exit_code')}"]
    return []
