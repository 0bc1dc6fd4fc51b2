"""The audit trail's way in: every HTTP call that is not a read is recorded — by whom (key or token), for which
tenant, what, on what, with which status, from where — as its answer leaves (``AuditService`` writes the row beside
it, and ``GET /v1/audit`` waits for rows still being written, so a client that got an answer finds its call).
WebSocket commands that act are recorded where they are dispatched (``record_socket``), under the same action names
as their REST twins.

- **action**: ``<routes module>.<operation>`` (``sandboxes.kill_sandbox``, ``agents.prompt``): named by the
  route that answered, so a route added later is recorded without a line here;
- **target**: the ids in the path, then what the call created (the ``session_id``, ``id``, ``pty_id`` or ``port`` of
  a 201's body; a secret in that body is never kept), and a file's path;
- a call that matched no route changed nothing and is not recorded; one refused for its credential is, with no
  ``by`` (failed attempts are bounded per address by ``failed_auth``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from cove.api.deps import services_of
from cove.services.principal import Principal

READS = frozenset({"GET", "HEAD", "OPTIONS"})
HELD_BYTES = 64 * 1024  # a reply held until it is recorded; larger ones are recorded at their first byte
MAX_TARGET = 512
_CREATED = ("session_id", "id", "pty_id", "port")


class AuditTrail:
    """ASGI middleware around the API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        size = 0
        recorded = False

        async def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            route = scope.get("route")
            if route is None:
                return
            body = b"".join(m.get("body", b"") for m in held) if status == 201 else b""
            await _record(scope, _action(route), _target(scope, body), status)

        async def audited(message: Message) -> None:
            nonlocal size
            if recorded:
                await send(message)
                return
            held.append(message)
            size += len(message.get("body", b""))
            complete = message["type"] == "http.response.body" and not message.get("more_body", False)
            if complete or size > HELD_BYTES:
                await record(held[0]["status"])
                for kept in held:
                    await send(kept)

        try:
            await self.app(scope, receive, audited)
        except Exception:
            if not recorded:
                await record(500)
            raise


async def record_socket(websocket: WebSocket, who: Principal, action: str, target: str, status: int) -> None:
    """A WebSocket command that acts, recorded as its REST twin would be."""
    client = websocket.client.host if websocket.client else None
    await services_of(websocket.app).audit.record(who, action, target[:MAX_TARGET], status, client)


async def _record(scope: Scope, action: str, target: str, status: int) -> None:
    who = scope.get("state", {}).get("principal")
    client = scope.get("client")
    await services_of(scope["app"]).audit.record(
        who, action, target[:MAX_TARGET], status, client[0] if client else None
    )


def _action(route: Any) -> str:
    endpoint = route.endpoint
    return f"{endpoint.__module__.rsplit('.', 1)[-1]}.{endpoint.__name__}"


def _target(scope: Scope, created_body: bytes) -> str:
    parts = [str(value) for value in scope.get("path_params", {}).values()]
    if created_body:
        try:
            created = json.loads(created_body)
        except ValueError:
            created = None
        if isinstance(created, dict):
            parts += [str(created[name]) for name in _CREATED if isinstance(created.get(name), str | int)][:1]
    target = "/".join(parts)
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if name == "path":
            target += f":{value}"
    return target
