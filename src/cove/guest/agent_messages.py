"""Claude's messages (claude_agent_sdk dataclasses) as journal events, their fields kept intact.

Two renames keep the journal's common fields unambiguous: a message's own ``session_id`` (Claude's
conversation id) becomes ``claude_session_id``, since ``session_id`` is the Cove session's; and content
blocks gain the ``type`` the SDK's dataclasses drop (``text``, ``thinking``, ``tool_use``, ``tool_result``,
``server_tool_use``, ``server_tool_result``), as in the Messages API.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    ServerToolResultBlock,
    ServerToolUseBlock,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

__all__ = ["message_event"]

_BLOCK_TYPES: dict[type, str] = {
    TextBlock: "text",
    ThinkingBlock: "thinking",
    ToolUseBlock: "tool_use",
    ToolResultBlock: "tool_result",
    ServerToolUseBlock: "server_tool_use",
    ServerToolResultBlock: "server_tool_result",
}


def _plain(value: Any) -> Any:
    """A JSON-ready copy of an SDK value: dataclasses become dicts (content blocks get their ``type``), and lists
    are searched for them. Dicts are kept as they are: the SDK puts the CLI's own parsed JSON in them (a system
    message's ``data``, a tool's ``input``), never its dataclasses, and copying them value by value — the init
    message's lists of tools and commands, every turn — was most of the runner's CPU."""
    names = _field_names(type(value))
    if names is not None:
        out: dict[str, Any] = {}
        block_type = _BLOCK_TYPES.get(type(value))
        if block_type is not None:
            out["type"] = block_type
        for name in names:
            out[name] = _plain(getattr(value, name))
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names (looked up once per class), or None for any other type."""
    try:
        return _NAMES[cls]
    except KeyError:
        names = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None
        _NAMES[cls] = names
        return names


def _fields(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = _plain(message)
    if "session_id" in data:
        data["claude_session_id"] = data.pop("session_id")
    return data


def message_event(message: Any) -> tuple[str, dict[str, Any]]:
    """(event type, event fields) for one message from ``ClaudeSDKClient.receive_messages()``."""
    if isinstance(message, AssistantMessage):
        return "assistant", _fields(message)
    if isinstance(message, UserMessage):
        return "user", _fields(message)
    if isinstance(message, ResultMessage):
        return "result", _fields(message)
    if isinstance(message, SystemMessage):
        # Typed subclasses (task_started, hook events…) repeat what `data` holds: keep the wire shape.
        return "system", {"subtype": message.subtype, "data": _plain(message.data)}
    # Rate-limit notices, conversation resets and whatever later SDKs add: still Claude's own
    # messages, so pass them through as `system` under their class name.
    name = type(message).__name__
    subtype = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return "system", {"subtype": subtype, "data": _fields(message)}
