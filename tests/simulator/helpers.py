"""Request bodies shaped like the ones the Claude Code CLI sends, and an SSE parser."""

from __future__ import annotations

import json
from typing import Any

REMINDER = "<system-reminder>\nAttribution for git commits...\n</system-reminder>\n"
TOOLS = [{"name": name, "description": name, "input_schema": {"type": "object"}} for name in ("Bash", "Read", "Write")]


def environment(cwd: str) -> dict[str, Any]:
    """The mid-conversation system message in which CLI 2.1.x reports its working directory."""
    text = f"# Environment\nYou have been invoked in the following environment: \n - Primary working directory: {cwd}\n"
    return {"role": "system", "content": [{"type": "text", "text": text}]}


def prompt(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": text}]}


def tool_exchange(tool_use_id: str, result: str) -> list[dict[str, Any]]:
    """An assistant tool_use and the user tool_result that answers it."""
    return [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": tool_use_id, "name": "Bash", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use_id, "content": result},
                {"type": "text", "text": "<system-reminder>file changed</system-reminder>"},
            ],
        },
    ]


def body(messages: list[dict[str, Any]], *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."}],
        "tools": TOOLS,
        "messages": messages,
        "stream": stream,
    }
    result.update(extra)
    return result


def parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """``[(event, data), ...]`` from an SSE body; every event must carry a JSON ``data`` line."""
    events: list[tuple[str, dict[str, Any]]] = []
    for chunk in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events
