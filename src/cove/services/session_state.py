"""How a session's summary follows from its events — one pure function, so ingest after a restart (replaying a
journal from the stored cursor) reaches exactly the state a live ingest would have."""

from __future__ import annotations

from typing import Any

from cove.guest.agent_config import CONFIGURABLE
from cove.store.sessions import SessionRecord

STARTING = "starting"
IDLE = "idle"
RUNNING = "running"
EXITED = "exited"
FAILED = "failed"
FINAL = (EXITED, FAILED)


CONFIG_KEYS = CONFIGURABLE  # one list, shared with the runner that applies them


def _merge_config(record: SessionRecord, config: Any) -> None:
    """Only the settings ``configure`` can change; resume and fork are start options, kept apart."""
    if isinstance(config, dict):
        record.config = {**record.config, **{k: v for k, v in config.items() if k in CONFIG_KEYS}}


def apply_event(record: SessionRecord, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "ready":
        record.status = IDLE if record.status in (STARTING, IDLE) else record.status
        record.claude_session_id = event.get("claude_session_id") or record.claude_session_id
        _merge_config(record, event.get("config"))
    elif kind == "turn_started":
        record.status = RUNNING
    elif kind == "turn_complete":
        record.status = IDLE
        record.turns = int(event.get("turn") or record.turns)
        record.claude_session_id = event.get("claude_session_id") or record.claude_session_id
        if isinstance(event.get("total_usage"), dict):
            record.usage = {k: int(v) for k, v in event["total_usage"].items() if isinstance(v, int | float)}
        if isinstance(event.get("total_cost_usd"), int | float):
            record.total_cost_usd = float(event["total_cost_usd"])
    elif kind == "configured":
        _merge_config(record, event.get("config"))
    elif kind == "error":
        record.error = {"code": event.get("code"), "message": event.get("message")}
        if record.status == STARTING:
            record.status = FAILED
    elif kind == "exit":
        record.exit_code = event.get("exit_code")
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
