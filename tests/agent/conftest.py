"""Helpers for agent tests: the events schema, the simulator's request log, a sandbox per test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from cove import AsyncSandbox
from tests.conftest import ROOT, CoveServer

SCHEMA = json.loads((ROOT / "docs" / "events.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def validate_events(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every event matches docs/events.schema.json, and seqs run 1, 2, 3… without a gap or a repeat."""
    checked = [dict(e) for e in events]
    for event in checked:
        VALIDATOR.validate(event)
    seqs = [e["seq"] for e in checked]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True, seqs
    return checked


def simulator_requests(server: CoveServer) -> list[dict[str, Any]]:
    with server.http() as client:
        simulator = client.get("/v1/model").json()["simulator_url"]
    reply: list[dict[str, Any]] = httpx.get(f"{simulator}/_sim/requests", params={"limit": 1000}).json()
    return reply


def main_requests(server: CoveServer, marker: str) -> list[dict[str, Any]]:
    """The simulator's record of the conversation requests whose latest prompt contains ``marker``."""
    return [r for r in simulator_requests(server) if marker in (r.get("last_user_text") or "") and r.get("tool_names")]


def texts(events: Iterable[Mapping[str, Any]]) -> str:
    """All assistant text of these events, joined."""
    parts = []
    for event in events:
        if event.get("type") == "assistant":
            parts += [b.get("text", "") for b in event.get("content", []) if b.get("type") == "text"]
    return "\n".join(parts)


def turn_events(events: Iterable[Mapping[str, Any]], turn: int) -> list[Mapping[str, Any]]:
    """The events between turn ``turn``'s turn_started and its turn_complete."""
    inside, picked = False, []
    for event in events:
        if event.get("type") == "turn_started" and event.get("turn") == turn:
            inside = True
        if inside:
            picked.append(event)
        if inside and event.get("type") == "turn_complete":
            break
    return picked


@pytest.fixture
async def sandbox(connection: dict[str, str]) -> AsyncIterator[AsyncSandbox]:
    async with await AsyncSandbox.create(**connection) as sandbox:
        yield sandbox


def transcript_path(server: CoveServer, sandbox_id: str, claude_session_id: str) -> Path:
    home = server.home / "sandboxes" / sandbox_id / "merged" / "home"  # the sandbox's /home/user (an overlay)
    [path] = home.glob(f".claude/projects/*/{claude_session_id}.jsonl")
    return path
