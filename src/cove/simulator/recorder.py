"""A bounded log of the requests the simulator received, served at ``/_sim/requests``.

Tests read it to prove what reached the "model": which model was named, which key a proxy put in, what the
CLI's system prompt said, and what the simulator decided to answer.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from cove.simulator.conversation import Conversation


class RequestLog:
    """The most recent ``capacity`` requests, oldest first."""

    def __init__(self, capacity: int = 1000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)

    def add(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

    def recent(self, limit: int | None = None) -> list[dict[str, Any]]:
        entries = list(self._entries)
        if limit is not None:
            entries = entries[-limit:] if limit > 0 else []
        return entries

    def clear(self) -> None:
        self._entries.clear()


def make_entry(
    *,
    path: str,
    body: dict[str, Any],
    conversation: Conversation,
    headers: dict[str, str],
    api_key: str | None,
    instruction: str,
) -> dict[str, Any]:
    """One ``/_sim/requests`` record (documented in docs/simulator.md)."""
    messages = body.get("messages")
    max_tokens = body.get("max_tokens")
    return {
        "time": time.time(),
        "path": path,
        "model": conversation.model,
        "system": conversation.system_text,
        "tool_names": conversation.tool_names,
        "stream": bool(body.get("stream", False)),
        "max_tokens": max_tokens if isinstance(max_tokens, int) else None,
        "message_count": len(messages) if isinstance(messages, list) else 0,
        "last_user_text": conversation.latest_prompt,
        "prompt_count": len(conversation.prompts),
        "tool_result_count": len(conversation.tool_results),
        "last_tool_result": conversation.tool_results[-1] if conversation.tool_results else None,
        "cwd": conversation.cwd,
        "side_request": conversation.is_side_request,
        "api_key": api_key,
        "anthropic_beta": headers.get("anthropic-beta"),
        "user_agent": headers.get("user-agent"),
        "session_id": headers.get("x-claude-code-session-id"),
        "instruction": instruction,
    }
