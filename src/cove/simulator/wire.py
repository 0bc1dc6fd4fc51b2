"""Turning a decision into Anthropic Messages API wire format: a Message object or its SSE stream.

The event sequence mirrors what api.anthropic.com sends, because the Claude Code CLI parses the stream with
the official SDK and anything unusual would surface as a client error rather than a simulated reply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cove.simulator.script import TextReply, ToolUse

SLOW_TICK_SECONDS = 0.05
"""How often a ``@slow`` reply emits a delta."""

THINKING_SIGNATURE = "sim-signature"
"""The ``signature`` of every simulated thinking block (the CLI sends thinking blocks back with theirs)."""

_FAST_CHUNK = 24
"""Characters per ``text_delta`` for ordinary replies (several deltas, like a real model)."""


@dataclass(frozen=True)
class MessageMeta:
    """The envelope of one simulated assistant message."""

    message_id: str
    model: str
    input_tokens: int
    stop_reason: str


def estimate_tokens(chars: int) -> int:
    """The usual rough estimate: about four characters per token, at least one."""
    return max(1, chars // 4)


def content_blocks(decision: TextReply | ToolUse) -> list[dict[str, Any]]:
    """The ``content`` of the assistant message for a decision."""
    if isinstance(decision, ToolUse):
        return [
            {"type": "text", "text": decision.preface},
            {"type": "tool_use", "id": decision.tool_use_id, "name": decision.name, "input": decision.input},
        ]
    thinking = [{"type": "thinking", "thinking": decision.thinking, "signature": THINKING_SIGNATURE}]
    return [*(thinking if decision.thinking else []), {"type": "text", "text": decision.text}]


_STREAMED = {"text": "text", "thinking": "thinking"}
"""The blocks streamed as text, by type: the field that holds their text (and names their delta)."""


def _output_chars(blocks: list[dict[str, Any]]) -> int:
    total = 0
    for block in blocks:
        if block["type"] in _STREAMED:
            total += len(block[_STREAMED[block["type"]]])
        else:
            total += len(json.dumps(block["input"]))
    return total


def truncate_to(decision: TextReply | ToolUse, max_tokens: int) -> tuple[TextReply | ToolUse, str]:
    """Cut a text reply that would exceed ``max_tokens`` (as the API does); return it and the stop reason."""
    if isinstance(decision, ToolUse):
        return decision, "tool_use"
    limit = max_tokens * 4
    if len(decision.text) > limit:
        return TextReply(decision.text[:limit], decision.slow_seconds, decision.kind, decision.thinking), "max_tokens"
    return decision, "end_turn"


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_json(decision: TextReply | ToolUse, meta: MessageMeta) -> dict[str, Any]:
    """A complete non-streaming Message object."""
    blocks = content_blocks(decision)
    return {
        "id": meta.message_id,
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": blocks,
        "stop_reason": meta.stop_reason,
        "stop_sequence": None,
        "usage": usage(meta.input_tokens, estimate_tokens(_output_chars(blocks))),
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event, in the ``event:``/``data:`` form the Anthropic SDKs parse."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunks(text: str, count: int) -> list[str]:
    """Split ``text`` into ``count`` nearly equal non-empty pieces (fewer if the text is shorter)."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def _block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


async def stream_events(decision: TextReply | ToolUse, meta: MessageMeta) -> AsyncIterator[bytes]:
    """The SSE event sequence of one streamed message, paced for ``@slow`` replies."""
    blocks = content_blocks(decision)
    start_message = message_json(decision, meta)
    start_message.update(content=[], stop_reason=None, usage=usage(meta.input_tokens, 1))
    yield sse("message_start", {"type": "message_start", "message": start_message})
    slow = decision.slow_seconds if isinstance(decision, TextReply) else None
    # A slow reply's ticks are shared by its streamed blocks (thinking, then text) in proportion to their length.
    streamed_chars = sum(len(b[_STREAMED[b["type"]]]) for b in blocks if b["type"] in _STREAMED) or 1
    for index, block in enumerate(blocks):
        field = _STREAMED.get(block["type"])
        if field is not None:
            yield _block_start(
                index, {key: "" if key in (field, "signature") else value for key, value in block.items()}
            )
            if index == 0:
                yield sse("ping", {"type": "ping"})
            text: str = block[field]
            if slow:
                ticks = max(1, round(slow / SLOW_TICK_SECONDS * len(text) / streamed_chars))
                pieces = _chunks(text, ticks)
                pause = slow * len(text) / streamed_chars / len(pieces)
            else:
                pieces = _chunks(text, -(-len(text) // _FAST_CHUNK))
                pause = 0.0
            for piece in pieces:
                if pause:
                    await asyncio.sleep(pause)
                yield _block_delta(index, {"type": f"{field}_delta", field: piece})
            if field == "thinking":
                yield _block_delta(index, {"type": "signature_delta", "signature": block["signature"]})
        else:
            yield _block_start(index, {**block, "input": {}})
            if index == 0:
                yield sse("ping", {"type": "ping"})
            raw = json.dumps(block["input"])
            for piece in _chunks(raw, -(-len(raw) // _FAST_CHUNK)):
                yield _block_delta(index, {"type": "input_json_delta", "partial_json": piece})
        yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": meta.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": estimate_tokens(_output_chars(blocks))},
        },
    )
    yield sse("message_stop", {"type": "message_stop"})
