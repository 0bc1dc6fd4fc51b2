"""Sync twin of the agent API: the same async handles, driven from the SDK's background loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any

from cove.sdk._agent import (
    AgentEvent,
    AsyncAgents,
    AsyncAgentSession,
    ErrorCallback,
    EventCallback,
    PermissionCallback,
    PermissionRequest,
    list_agent_sessions,
)
from cove.sdk._portal import call, iterate
from cove.wire import AgentSession as SessionInfo
from cove.wire import InterruptResult, ModelInfo, PermissionResolved, PromptAccepted, Scope, TokenCreated
from cove.wire.turns import TurnDiff


class AgentSession:
    """Blocking view of an agent session; ``session.wait()`` is the sync form of ``await session.done``."""

    def __init__(self, core: AsyncAgentSession) -> None:
        self._core = core

    @property
    def session_id(self) -> str:
        return self._core.session_id

    @property
    def claude_session_id(self) -> str | None:
        return self._core.claude_session_id

    @property
    def info(self) -> SessionInfo:
        return self._core.info

    def wait(self, timeout: float | None = None) -> AgentEvent:
        """Block until the current turn completes; returns its ``turn_complete`` event."""
        return call(_wait_turn(self._core, timeout))

    @property
    def done(self) -> AgentEvent:
        return self.wait()

    def wait_exit(self, timeout: float | None = None) -> AgentEvent:
        """Block until the session's ``exit`` event."""
        return call(asyncio.wait_for(self._core.wait_exit(), timeout))

    def send_prompt(self, text: str) -> PromptAccepted:
        return call(self._core.send_prompt(text))

    def interrupt(self) -> InterruptResult:
        return call(self._core.interrupt())

    @property
    def pending_permissions(self) -> list[PermissionRequest]:
        """The tools the agent is waiting to be allowed or denied, oldest first."""
        return self._core.pending_permissions

    def approve(
        self, request_id: str, *, updated_input: dict[str, Any] | None = None, remember: bool = False
    ) -> PermissionResolved:
        """Allow a pending tool use; see ``AsyncAgentSession.approve``."""
        return call(self._core.approve(request_id, updated_input=updated_input, remember=remember))

    def deny(self, request_id: str, message: str | None = None) -> PermissionResolved:
        """Deny a pending tool use; ``message`` is what the agent is told."""
        return call(self._core.deny(request_id, message))

    def configure(self, **changes: Any) -> SessionInfo:
        return call(self._core.configure(**changes))

    def kill(self, signal: str | int = "SIGTERM") -> SessionInfo:
        return call(self._core.kill(signal))

    def refresh(self) -> SessionInfo:
        return call(self._core.refresh())

    def diff(self, turn: int | None = None) -> TurnDiff:
        """What a turn changed (default: the last completed one), as ``git diff`` writes it; ``files`` in full.

        >>> print(session.diff().diff)
        """
        return call(self._core.diff(turn))

    def diff_pages(self, turn: int | None = None, *, limit: int | None = None) -> Iterator[TurnDiff]:
        return iterate(self._core.diff_pages(turn, limit=limit))

    def create_token(self, scopes: Iterable[Scope], *, ttl_s: int = 3600) -> TokenCreated:
        """A token for this session alone (``read``, ``prompt``, ``approve``), for ``ttl_s`` seconds."""
        return call(self._core.create_token(scopes, ttl_s=ttl_s))

    def events(self) -> Iterator[AgentEvent]:
        """Every event this handle has received, then the new ones as they come, until the session exits."""
        return iterate(self._core.events())

    def collect_events(self, after: int = 0) -> list[AgentEvent]:
        return call(self._core.collect_events(after))

    def close(self) -> None:
        call(self._core.close())


async def _wait_turn(core: AsyncAgentSession, timeout: float | None) -> AgentEvent:
    # ``done`` makes a task, which needs the running loop: evaluate it there, not in the caller's thread.
    return await asyncio.wait_for(core.done, timeout)


class Agents:
    def __init__(self, core: AsyncAgents) -> None:
        self._core = core

    def start(
        self,
        prompt: str | None = None,
        *,
        on_event: EventCallback | None = None,
        on_error: ErrorCallback | None = None,
        on_permission: PermissionCallback | None = None,
        **options: Any,
    ) -> AgentSession:
        """Start an agent; options as for ``AsyncAgents.start`` (resume, fork, model, permission_mode, cwd, …).
        ``on_permission`` may be a plain function that blocks (it runs in a worker thread)."""
        core = self._core.start(prompt, on_event=on_event, on_error=on_error, on_permission=on_permission, **options)
        return AgentSession(call(core))

    def attach(
        self,
        session_id: str,
        *,
        on_event: EventCallback | None = None,
        on_error: ErrorCallback | None = None,
        on_permission: PermissionCallback | None = None,
        after: int = 0,
    ) -> AgentSession:
        core = self._core.attach(
            session_id, on_event=on_event, on_error=on_error, on_permission=on_permission, after=after
        )
        return AgentSession(call(core))

    def session(self, session_id: str) -> AgentSession:
        """A handle for commands only; it does not follow the session's events."""
        return AgentSession(call(self._core.session(session_id)))

    def get(self, session_id: str) -> SessionInfo:
        return call(self._core.get(session_id))

    def list(self) -> list[SessionInfo]:
        return call(self._core.list())

    def model_info(self) -> ModelInfo:
        """Which model upstream the server's agents talk to (``"simulator"``: costs are simulated)."""
        return call(self._core.model_info())


def list_sessions(
    *, status: str | None = None, sandbox_id: str | None = None, url: str | None = None, api_key: str | None = None
) -> list[SessionInfo]:
    """Agent sessions across every sandbox (blocking)."""
    return call(list_agent_sessions(status=status, sandbox_id=sandbox_id, url=url, api_key=api_key))
