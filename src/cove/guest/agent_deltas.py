"""Live text: Claude Code's stream events as ``text_delta`` and ``thinking_delta`` events, coalesced.

With ``include_partial_messages`` the CLI passes on every event of the model's stream, and a real model sends a
delta every few characters. Journalling each would make the log grow by an event per word, and every event costs
the server an ingest and each client a frame. So the deltas of one content block are gathered and journalled at
most once per ``INTERVAL_S``: the first delta of a block starts a timer, and whatever arrived when it fires becomes
one event. A block's end, its message's end, and any complete message (``flush``) empty every buffer first, so the
deltas of a block always come before the ``assistant`` event that holds the whole block.

Standard library only (runs inside the sandbox, in the agent runner).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["INTERVAL_S", "DeltaStream"]

INTERVAL_S = 0.03

# The Messages API's delta types this turns into events, with the field that holds their text.
_DELTAS = {"text_delta": ("text_delta", "text"), "thinking_delta": ("thinking_delta", "thinking")}


@dataclass
class _Block:
    kind: str  # the event type: text_delta or thinking_delta
    parent_tool_use_id: str | None
    parts: list[str] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class DeltaStream:
    """Buffers the text of the content blocks being streamed; ``emit(type, **fields)`` journals an event."""

    def __init__(self, emit: Callable[..., object], interval: float = INTERVAL_S) -> None:
        self._emit = emit
        self._interval = interval
        self._message_ids: dict[str | None, str] = {}  # the message being streamed, per (sub)agent
        self._blocks: dict[tuple[str, int], _Block] = {}  # in the order their first delta came

    def feed(self, event: dict[str, Any], parent_tool_use_id: str | None) -> None:
        """Take one raw stream event (a ``StreamEvent``'s ``event``)."""
        kind = event.get("type")
        if kind == "content_block_delta":
            self._delta(event, parent_tool_use_id)
        elif kind == "message_start":
            message = event.get("message")
            message_id = message.get("id") if isinstance(message, dict) else None
            if isinstance(message_id, str):
                self._message_ids[parent_tool_use_id] = message_id
        elif kind == "content_block_stop":
            message_id = self._message_ids.get(parent_tool_use_id)
            index = event.get("index")
            if message_id is not None and isinstance(index, int):
                self._flush_block((message_id, index))
        elif kind == "message_stop":
            self.flush()

    def _delta(self, event: dict[str, Any], parent_tool_use_id: str | None) -> None:
        delta, index = event.get("delta"), event.get("index")
        message_id = self._message_ids.get(parent_tool_use_id)
        if not isinstance(delta, dict) or message_id is None or not isinstance(index, int):
            return
        known = _DELTAS.get(str(delta.get("type")))
        if known is None:
            return  # tool input and signatures arrive whole in the assistant event
        kind, text_field = known
        text = delta.get(text_field)
        if not isinstance(text, str) or not text:
            return
        key = (message_id, index)
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = _Block(kind, parent_tool_use_id)
        block.parts.append(text)
        if block.timer is None:
            block.timer = asyncio.get_running_loop().call_later(self._interval, self._flush_block, key)

    def _flush_block(self, key: tuple[str, int]) -> None:
        block = self._blocks.pop(key, None)
        if block is None:
            return
        if block.timer is not None:
            block.timer.cancel()
        fields: dict[str, Any] = {"message_id": key[0], "index": key[1], "text": "".join(block.parts)}
        if block.parent_tool_use_id is not None:
            fields["parent_tool_use_id"] = block.parent_tool_use_id
        self._emit(block.kind, **fields)

    def flush(self) -> None:
        """Journal every buffered delta now (before a complete message, or at the end of a turn)."""
        for key in list(self._blocks):
            self._flush_block(key)
