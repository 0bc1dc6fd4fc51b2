"""Approvals: Claude Code's permission callback (``can_use_tool``) answered by the session's clients.

When the CLI wants to use a tool its permission mode and rules do not allow by themselves, it asks the SDK's
``can_use_tool`` callback and the turn waits for the answer. Here the callback journals ``permission_requested``
and waits; any client of the session answers through the control socket (``permission``), and the first answer
is the one: it is journalled as ``permission_resolved`` and handed to the CLI. Every request ends in exactly one
``permission_resolved`` — an answer, the session's timeout, an interrupt, or the CLI withdrawing it (``cancelled``:
the CLI went away, or stopped waiting) — and a later answer is refused (``already_resolved``).

The pending requests live in this process, not in the server, so they survive a server restart: the server
forwards answers and never needs to know what is pending.

Imports: the standard library and ``claude_agent_sdk`` only (runs inside the sandbox).
"""

from __future__ import annotations

import asyncio
import collections
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, ToolPermissionContext
from claude_agent_sdk.types import PermissionResult, PermissionRuleValue, PermissionUpdate

from cove.guest.agent_errors import RequestError

__all__ = ["SESSION", "Permissions"]

SESSION = "session"
"""``by`` of a request the session resolved by itself (its timeout, or the CLI withdrawing it)."""

# How many resolved request ids are remembered, to tell a late second answer (409) from an unknown id (404).
_REMEMBERED = 4096
_MAX_MESSAGE = 10_000
_DENIED = {
    "answered": "The user denied this tool use.",
    "timeout": "No one answered the permission request within {timeout:g} s, so it was denied.",
    "interrupted": "The user interrupted the turn.",
    "cancelled": "The permission request was withdrawn.",
}


@dataclass
class _Pending:
    tool_name: str
    suggestions: list[PermissionUpdate]
    future: asyncio.Future[PermissionResult]
    timeout: float | None
    timer: asyncio.TimerHandle | None = None


def _wire(update: PermissionUpdate) -> dict[str, Any] | None:
    """A suggestion as the CLI's control protocol spells it, or None for one this SDK cannot send back."""
    try:
        return update.to_dict()
    except ValueError:
        return None


class Permissions:
    """The session's pending permission requests; ``emit(type, **fields)`` journals an event, ``timeout()`` is
    the session's ``permission_timeout_s`` when a request comes in."""

    def __init__(self, emit: Callable[..., object], timeout: Callable[[], float | None]) -> None:
        self._emit = emit
        self._timeout = timeout
        self._pending: dict[str, _Pending] = {}
        self._resolved: collections.OrderedDict[str, str] = collections.OrderedDict()  # id -> decision

    @property
    def pending(self) -> list[str]:
        return list(self._pending)

    async def can_use_tool(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        """The SDK's callback: journal the request, then wait for whatever resolves it first."""
        request_id = "perm_" + secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        timeout = self._timeout()
        pending = _Pending(tool_name, list(context.suggestions), loop.create_future(), timeout)
        self._pending[request_id] = pending
        fields: dict[str, Any] = {
            "request_id": request_id,
            "tool_name": tool_name,
            "input": tool_input,
            "suggestions": [wire for wire in map(_wire, pending.suggestions) if wire is not None],
            "tool_use_id": context.tool_use_id,
        }
        for name in ("title", "description", "decision_reason", "blocked_path"):
            value = getattr(context, name)
            if value is not None:
                fields[name] = value
        self._emit("permission_requested", **fields)
        if timeout is not None:
            pending.timer = loop.call_later(timeout, self._resolve, request_id, "deny", SESSION, "timeout")
        try:
            return await asyncio.shield(pending.future)
        except asyncio.CancelledError:
            # The CLI stopped waiting (its control_cancel_request, or it is being disconnected).
            self._resolve(request_id, "deny", SESSION, "cancelled")
            raise

    def answer(self, params: dict[str, Any]) -> dict[str, Any]:
        """The control op ``permission``: ``request_id``, ``decision`` (allow or deny), ``by`` (who answers, as
        the server names them), and optionally ``message`` (deny), ``updated_input`` (allow) and ``remember``
        (allow: apply Claude Code's suggested rule, e.g. accept edits, so the same request is not asked again)."""
        request_id, decision, by = params.get("request_id"), params.get("decision"), params.get("by")
        message, updated_input, remember = params.get("message"), params.get("updated_input"), params.get("remember")
        if not isinstance(request_id, str) or decision not in ("allow", "deny") or not isinstance(by, str) or not by:
            raise RequestError("invalid_argument", "permission needs request_id, decision (allow or deny) and by")
        if message is not None and (not isinstance(message, str) or len(message) > _MAX_MESSAGE):
            raise RequestError("invalid_argument", f"message must be a string of at most {_MAX_MESSAGE} characters")
        if updated_input is not None and (not isinstance(updated_input, dict) or decision != "allow"):
            raise RequestError("invalid_argument", "updated_input must be an object, and only comes with allow")
        if remember is not None and not isinstance(remember, bool):
            raise RequestError("invalid_argument", "remember must be a boolean")
        if request_id not in self._pending:
            earlier = self._resolved.get(request_id)
            if earlier is not None:
                raise RequestError(
                    "already_resolved", f"permission request {request_id} was already resolved ({earlier})"
                )
            raise RequestError("permission_not_found", f"no permission request {request_id} in this session")
        self._resolve(request_id, decision, by, "answered", message, updated_input, bool(remember))
        return {"request_id": request_id, "decision": decision, "by": by}

    def cancel_all(self, reason: str, by: str = SESSION) -> None:
        """Deny every pending request (an interrupt, or the CLI that asked is going away)."""
        for request_id in list(self._pending):
            self._resolve(request_id, "deny", by, reason)

    def _resolve(
        self,
        request_id: str,
        decision: str,
        by: str,
        reason: str,
        message: str | None = None,
        updated_input: dict[str, Any] | None = None,
        remember: bool = False,
    ) -> None:
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        self._resolved[request_id] = decision
        while len(self._resolved) > _REMEMBERED:
            self._resolved.popitem(last=False)
        result: PermissionResult
        if decision == "allow":
            updates = pending.suggestions or [
                PermissionUpdate("addRules", [PermissionRuleValue(pending.tool_name)], "allow", destination="session")
            ]
            result = PermissionResultAllow(updated_input=updated_input)
            result.updated_permissions = updates if remember else None
        else:
            message = message or _DENIED[reason].format(timeout=pending.timeout or 0)
            # interrupt: after an interrupt the CLI is told to stop the turn, not to carry on without the tool.
            result = PermissionResultDeny(message=message, interrupt=reason == "interrupted")
        self._emit(
            "permission_resolved", request_id=request_id, decision=decision, by=by, reason=reason, message=message
        )
        if not pending.future.done():
            pending.future.set_result(result)
