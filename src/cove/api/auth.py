"""Bearer API keys on every route but /healthz; WebSockets may pass the key as ``?api_key=`` (browsers cannot
set headers on a WebSocket). The id of the key a request came with is kept on it: what the server writes where
an event names who did something (``by`` of an approval), never what a client says."""

from __future__ import annotations

from fastapi import HTTPException, Request, WebSocket
from starlette.requests import HTTPConnection

from cove.api.deps import services_of


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


async def require_key(request: Request) -> None:
    key = _bearer(request.headers.get("authorization"))
    if not key:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' (see COVE_API_KEY)")
    key_id = await services_of(request.app).keys.key_id(key)
    if key_id is None:
        raise HTTPException(401, "invalid API key")
    request.state.key_id = key_id


async def websocket_key_valid(websocket: WebSocket) -> bool:
    key = _bearer(websocket.headers.get("authorization")) or websocket.query_params.get("api_key")
    key_id = await services_of(websocket.app).keys.key_id(key) if key else None
    websocket.state.key_id = key_id
    return key_id is not None


def caller(connection: HTTPConnection) -> str:
    """Who sent this request (or opened this WebSocket), once its key was checked: the key's id."""
    key_id: str = connection.state.key_id
    return key_id
