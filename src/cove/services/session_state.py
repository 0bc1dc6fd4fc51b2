"""How a session's summary follows from its events — one pure function, so ingest after a restart (replaying a
journal from the stored cursor) reaches exactly the state a live ingest would have.

The events come from a journal the sandbox can write, so every value taken from one is checked for its type and
range: a forged event may make its own session's summary wrong, never make ingest fail or store a value that
breaks the API's replies (an infinite cost, a count that is a string).
"""

from __future__ import annotations

import math
from typing import Any

from cove.guest.agent_config import CONFIGURABLE
from cove.store.sessions import SessionRecord
from cove.wire.bounds import MAX_TEXT

STARTING = "starting"
IDLE = "idle"
RUNNING = "running"
EXITED = "exited"
FAILED = "failed"
FINAL = (EXITED, FAILED)


CONFIG_KEYS = CONFIGURABLE  # one list, shared with the runner that applies them


# A setting from an event is the sandbox's word: bounded like what a client may send (``wire.agents``), so that
# one forged value can neither break the listings that carry every tenant's sessions nor bloat them.
_MAX_SETTING_DEPTH = 8
_MAX_SETTING_BYTES = MAX_TEXT + 64 * 1024  # a system prompt may be as long as a prompt


def _scalar(item: Any) -> bool:
    return item is None or isinstance(item, bool | int) or (isinstance(item, float) and math.isfinite(item))


def is_setting(value: Any) -> bool:
    """Whether ``value`` is a setting the API could have been sent: shallow, bounded, strict JSON."""
    stack, size = [(value, 0)], 0
    while stack:
        item, level = stack.pop()
        if level > _MAX_SETTING_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
            size += sum(len(key) for key in item)
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
        elif isinstance(item, str):
            size += len(item)
        elif not _scalar(item):
            return False
        if size > _MAX_SETTING_BYTES:
            return False
    return True


def _merge_config(record: SessionRecord, config: Any) -> None:
    """Only the settings ``configure`` can change; resume and fork are start options, kept apart."""
    if isinstance(config, dict):
        changes = {k: v for k, v in config.items() if k in CONFIG_KEYS and is_setting(v)}
        record.config = {**record.config, **changes}


_MAX_COUNT = 2**53  # what a JSON number carries exactly


def _count(value: Any) -> int | None:
    """A non-negative whole number from an event, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if 0 <= value < _MAX_COUNT else None


def _text(value: Any, limit: int = 1000) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _session_id(value: Any) -> str | None:
    text = _text(value, 128)
    return text if text and all(c.isalnum() or c in "-_" for c in text) else None


def apply_event(record: SessionRecord, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "ready":
        record.status = IDLE if record.status in (STARTING, IDLE) else record.status
        record.claude_session_id = _session_id(event.get("claude_session_id")) or record.claude_session_id
        _merge_config(record, event.get("config"))
    elif kind == "turn_started":
        record.status = RUNNING
    elif kind == "turn_complete":
        record.status = IDLE
        record.turns = _count(event.get("turn")) or record.turns
        record.claude_session_id = _session_id(event.get("claude_session_id")) or record.claude_session_id
        if isinstance(event.get("total_usage"), dict):
            usage = {k: _count(v) for k, v in event["total_usage"].items() if k in record.usage}
            record.usage = {**record.usage, **{k: v for k, v in usage.items() if v is not None}}
        cost = event.get("total_cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0:
            record.total_cost_usd = float(cost)
    elif kind == "configured":
        _merge_config(record, event.get("config"))
    elif kind == "error":
        record.error = {"code": _text(event.get("code"), 100), "message": _text(event.get("message"))}
        if record.status == STARTING:
            record.status = FAILED
    elif kind == "exit":
        code = event.get("exit_code")
        record.exit_code = code if type(code) is int and -(2**31) <= code < 2**31 else 1
        # A start error has already marked the session failed; any other end (a kill included) is an exit.
        if record.status != FAILED:
            record.status = EXITED


def summary_values(record: SessionRecord) -> dict[str, Any]:
    """The columns an ingest batch moves, stored in the same transaction as its events."""
    return {
        "status": record.status,
        "claude_session_id": record.claude_session_id,
        "turns": record.turns,
        "usage": record.usage,
        "proxy_usage": record.proxy_usage,
        "total_cost_usd": record.total_cost_usd,
        "config": record.config,
        "exit_code": record.exit_code,
        "error": record.error,
        "last_seq": record.last_seq,
        "journal_offset": record.journal_offset,
    }
