"""Bearer API keys on every route but /healthz; WebSockets may pass the key as ``?api_key=`` (browsers cannot
set headers on a WebSocket)."""

from __future__ import annotations

from fastapi import HTTPException, Request, WebSocket

from cove.api.deps import services_of


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


async def require_key(request: Request) -> None:
    key = _bearer(request.headers.get("authorization"))
    if not key:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' (see COVE_API_KEY)")
    if not await services_of(request.app).keys.is_valid(key):
        raise HTTPException(401, "invalid API key")


async def websocket_key_valid(websocket: WebSocket) -> bool:
    key = _bearer(websocket.headers.get("authorization")) or websocket.query_params.get("api_key")
    return bool(key) and await services_of(websocket.app).keys.is_valid(key or "")
