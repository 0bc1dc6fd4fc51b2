"""Who is asking: every request's credential, found where a client may put it, becomes a ``Principal`` that the
routes hand to the services (``services.principal``), which decide what it may see and do.

Where a credential may be:

- ``Authorization: Bearer <key or token>``, on every route (WebSockets included);
- ``?token=<token>`` on WebSockets and on SSE streams (``Accept: text/event-stream``): a browser cannot set a
  header on either, and a token is scoped and expiring; ``?api_key=`` on WebSockets, as before;
- a WebSocket subprotocol ``cove.bearer.<key or token>`` (offer ``cove`` beside it: the server answers with
  that one), which keeps the credential out of the URL and so out of every log between client and server.

Credentials in URLs are blanked in Cove's own logs (``request_limits.RedactSecrets``). Failed attempts are
counted per client address (``failed_auth``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from cove.api.deps import services_of
from cove.api.failed_auth import FailedAuth
from cove.services.errors import RateLimited, Unauthorized
from cove.services.principal import Principal
from cove.services.tokens import is_token

SUBPROTOCOL = "cove"
BEARER_SUBPROTOCOL = "cove.bearer."


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def credential(connection: HTTPConnection) -> str | None:
    """The key or token a request (or WebSocket handshake) carries, from wherever it may carry one."""
    found = _bearer(connection.headers.get("authorization"))
    if found:
        return found
    query = connection.query_params
    if connection.scope["type"] == "websocket":
        for protocol in connection.scope.get("subprotocols", []):
            if protocol.startswith(BEARER_SUBPROTOCOL):
                return protocol.removeprefix(BEARER_SUBPROTOCOL) or None
        return query.get("token") or query.get("api_key") or None
    if "text/event-stream" in connection.headers.get("accept", ""):
        return query.get("token") or None
    return None


async def authenticate(connection: HTTPConnection) -> Principal:
    """The principal of the request's credential; ``Unauthorized`` without a valid one, ``RateLimited`` for an
    address that failed too often of late."""
    who = await principal_of(connection, credential(connection))
    connection.state.principal = who
    return who


async def principal_of(connection: HTTPConnection, secret: str | None, *, counted: bool = True) -> Principal:
    """The principal of ``secret``, a credential ``connection`` brought (wherever it found it: a preview takes
    its token from places of its own); failures are limited per client address, and counted unless not
    ``counted`` (a credential the server itself left with the client, which goes stale by itself)."""
    limiter: FailedAuth = connection.app.state.failed_auth
    address = connection.client.host if connection.client else None
    wait = limiter.retry_after(address)
    if wait is not None:
        raise RateLimited(
            f"too many failed authentications from {address} (more than {limiter.per_minute} a minute); "
            f"try again in {wait} s",
            retry_after=wait,
        )
    if secret is None:
        raise Unauthorized("missing API key or token: send 'Authorization: Bearer <key>' (see COVE_API_KEY)")
    svc = services_of(connection.app)
    who = await svc.tokens.principal(secret) if is_token(secret) else svc.keys.principal(secret)
    if who is None:
        if counted:
            limiter.failed(address)
        raise Unauthorized("invalid API key or token (unknown, expired or revoked)")
    return who


async def require_principal(request: Request) -> Principal:
    return await authenticate(request)


PrincipalDep = Annotated[Principal, Depends(require_principal)]
