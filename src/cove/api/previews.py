"""Preview URLs: requests for a sandbox's published port, taken before the API's routes see them.

A request is a preview's when its Host is ``{port}-{id}.{preview domain}`` or its path starts with
``/v1/sandboxes/{id}/ports/{port}/`` (``cove.preview.urls``). Who may open it:

- a public preview: anyone who reaches the server (no credential is looked at);
- a private one: whoever brings a scoped token with the ``preview`` scope for its sandbox (the one ``expose``
  gave, or any other minted so) — in the ``X-Cove-Preview-Token`` header, as ``Authorization: Bearer``, in the
  ``cove_preview_token`` cookie, or once as ``?token=``, which is answered with a redirect to the same URL
  without it and a cookie scoped to that preview (``HttpOnly``, ``SameSite=Lax``; its path, or its host). Another
  tenant's token, or one for another sandbox, finds nothing (404), as on the API; one without the scope is 403.

Such a token opens previews and nothing else: on the API's routes it is a token without their scopes (403, or
404 outside its sandbox), and the cookie is not a credential there at all. Cove's own credentials never reach
the app: the token header, Cove's cookies (``cove_*``), a Cove key or token in ``Authorization``, ``?api_key=``
or ``?token=`` are removed, as are forwarding headers the client made up (the relay sets its own); an app cannot
set a cookie named ``cove_*``. A path-based preview shares its origin with the Cove API and every other path-based
preview, so its app may not widen a service worker's scope past its prefix or clear the origin's data; isolation
between previews in one browser needs the preview domain (docs/security.md).
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from cove.api.auth import principal_of
from cove.api.deps import services_of
from cove.api.errors import service_error_response
from cove.api.sockets import CLOSED_CREDENTIAL
from cove.preview import http, urls, websocket
from cove.preview.http import Headers
from cove.services.errors import CoveServiceError, Unauthorized
from cove.services.ports import Exposure, PortService
from cove.services.principal import Principal
from cove.services.tokens import is_token
from cove.store.keys import KEY_PREFIX

log = logging.getLogger("cove.preview")

TOKEN_HEADER = b"x-cove-preview-token"
COOKIE = "cove_preview_token"
_COVE_COOKIES = "cove_"
_KEY = KEY_PREFIX.encode()
_FORWARDING = (b"forwarded", b"x-forwarded-", b"x-real-ip", b"via", b"x-client-ip", b"true-client-ip")
# What a path-based preview's app may not say for the origin it shares with the Cove API.
_ORIGIN_WIDE = {b"service-worker-allowed", b"clear-site-data"}
_DENIAL = "websocket.http.response"  # the ASGI extension that lets a WebSocket be refused with an HTTP answer


class PreviewRouter:
    """ASGI middleware in front of the API: preview requests go to the sandbox's app, the rest to ``app``."""

    def __init__(self, app: ASGIApp, domain: str | None = None) -> None:
        self.app = app
        self.domain = domain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        target = urls.match(raw_path, _header(scope, b"host"), self.domain)
        if target is None:
            await self.app(scope, receive, send)
        elif not target.path:  # the bare prefix: the API's (closing a port), or a browser missing the slash
            if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
                await _redirect(send, _location(target.prefix + "/", scope["query_string"]))
            else:
                await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _serve_http(scope, receive, send, target)
        else:
            await _serve_websocket(scope, receive, send, target)


async def _serve_http(scope: Scope, receive: Receive, send: Send, target: urls.Target) -> None:
    ports = services_of(scope["app"]).ports
    query, from_query = _query(scope["query_string"])
    headers = _forwarded(scope, target)
    try:
        exposure = ports.find(target.sandbox_id, target.port)
        who = await _opener(scope, ports, exposure, from_query)
        if who is not None and from_query is not None:
            location = _location(target.prefix + target.path.decode("latin-1"), query)
            await _redirect(send, location, _token_cookie(from_query, target, scope))
            return

        async def exchange(reuse: bool, body: Receive) -> None:
            async with ports.connect(exposure, who, reuse=reuse) as connection:
                await http.relay(
                    connection,
                    scope,
                    body,
                    send,
                    _request_target(target.path, query),
                    headers,
                    lambda response: _response_headers(response, target),
                )

        again = await http.replayable(headers, receive)
        if again is None:
            await exchange(False, receive)
            return
        try:
            await exchange(True, again())
        except http.Stale:  # a kept connection the app had closed: the request goes again, on a new one
            await exchange(False, again())
    except http.ResponseBroken as broken:
        # Begun and cannot be completed: returning without its end makes the server close the client's connection.
        log.info("preview of port %d of %s: %s", target.port, target.sandbox_id, broken)
    except CoveServiceError as error:
        await service_error_response(error)(scope, receive, send)


async def _serve_websocket(scope: Scope, receive: Receive, send: Send, target: urls.Target) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    ports = services_of(scope["app"]).ports
    query, from_query = _query(scope["query_string"])
    accepted = False
    try:
        exposure = ports.find(target.sandbox_id, target.port)
        who = await _opener(scope, ports, exposure, from_query)
        async with ports.connect(exposure, who) as connection:
            app = await websocket.handshake(
                connection.socket, scope, _request_target(target.path, query), _forwarded(scope, target)
            )
            await send({"type": "websocket.accept", "subprotocol": app.subprotocol})
            accepted = True
            await websocket.relay(app, receive, send)
    except (websocket.Refused, CoveServiceError) as error:
        if not accepted:
            log.info("preview WebSocket of port %d of %s refused: %s", target.port, target.sandbox_id, error)
            if isinstance(error, CoveServiceError) and _DENIAL in scope.get("extensions", {}):
                # Cove's refusal as its HTTP answer (401, 403, 404, 429…), as Cove's other WebSockets give it.
                await service_error_response(error)(scope, receive, send)
            else:  # the app refused its handshake: 403
                await send({"type": "websocket.close", "code": 1008})
        elif isinstance(error, CoveServiceError):
            code = CLOSED_CREDENTIAL if isinstance(error, Unauthorized) else 1011
            await send({"type": "websocket.close", "code": code, "reason": websocket.close_reason(error.message)})


async def _opener(scope: Scope, ports: PortService, exposure: Exposure, from_query: str | None) -> Principal | None:
    """Who opens ``exposure``: nobody need for a public preview; for a private one, the first Cove token the
    request carries (``?token=``, the header, ``Authorization``, the cookie), which must have the ``preview``
    scope for its sandbox. A failed token counts against the client's address as on the API, but for the
    cookie: Cove set it, and a page polling with one whose token expired must not lock its address out."""
    if exposure.public:
        return None
    secret = next((token for token in _tokens(scope, from_query) if token is not None and is_token(token)), None)
    if secret is None:
        who = None
    else:
        who = await principal_of(HTTPConnection(scope), secret, counted=secret != _cookie(scope))
    ports.admit(who, exposure)
    return who


def _tokens(scope: Scope, from_query: str | None) -> list[str | None]:
    """The tokens a request carries, wherever it may carry one, the one just given in the URL first."""
    scheme, _, bearer = (_header(scope, b"authorization") or "").partition(" ")
    return [
        from_query,
        _header(scope, TOKEN_HEADER),
        bearer.strip() if scheme.lower() == "bearer" else None,
        _cookie(scope),
    ]


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    return next((value.decode("latin-1") for key, value in headers if key == name), None)


def _cookie(scope: Scope) -> str | None:
    """The preview's token cookie, if the request carries one."""
    for pair in (_header(scope, b"cookie") or "").split(";"):
        name, _, value = pair.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _query(query: bytes) -> tuple[bytes, str | None]:
    """The query as the app may see it — without a Cove key or token (as ``api_key``, sent by mistake, or as
    ``token``: Cove's) — and the Cove token of its ``token`` parameter (None without one). An app's own
    ``token`` parameter, not a Cove token, is the app's."""
    kept: list[bytes] = []
    token = None
    for item in query.split(b"&") if query else []:
        name, _, value = item.partition(b"=")
        text = unquote_plus(value.decode("latin-1"))
        if name == b"api_key" and text.startswith(KEY_PREFIX):
            continue
        if name == b"token" and is_token(text):
            token = token or text
            continue
        kept.append(item)
    return b"&".join(kept), token


def _request_target(path: bytes, query: bytes) -> bytes:
    return path + b"?" + query if query else path


def _location(path: str, query: bytes) -> bytes:
    return (path + ("?" + query.decode("latin-1") if query else "")).encode("latin-1")


async def _redirect(send: Send, location: bytes, cookie: bytes | None = None) -> None:
    """307: the client repeats the same request (method and body) at ``location``, a path on this host."""
    headers = [(b"location", location), (b"content-length", b"0"), (b"cache-control", b"no-store")]
    if cookie is not None:
        headers.append((b"set-cookie", cookie))
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _token_cookie(token: str, target: urls.Target, scope: Scope) -> bytes:
    """The token that opened a preview as a cookie for that preview only: its path (path-based) or its host
    (host-based, no ``Domain``), never readable by scripts, not sent with cross-site subrequests."""
    secure = "; Secure" if scope.get("scheme") in ("https", "wss") else ""
    return f"{COOKIE}={token}; Path={target.prefix}/; HttpOnly; SameSite=Lax{secure}".encode("latin-1")


def _forwarded(scope: Scope, target: urls.Target) -> Headers:
    """The request's headers as the app gets them: without Cove's credentials or the client's forwarding
    headers, with the relay's own ``X-Forwarded-*``."""
    headers: Headers = []
    for name, value in scope["headers"]:
        if name == TOKEN_HEADER or name.startswith(_FORWARDING):
            continue
        scheme, _, credential = value.partition(b" ")
        if name == b"authorization" and scheme.lower() == b"bearer" and credential.strip().startswith(_KEY):
            continue  # a Cove API key, sent to the preview by mistake
        if name == b"cookie":
            value = _without_cove_cookies(value)
            if not value:
                continue
        headers.append((name, value))
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", str(client[0]).encode()))
    headers.append((b"x-forwarded-proto", b"https" if scope.get("scheme") in ("https", "wss") else b"http"))
    host = _header(scope, b"host")
    if host:
        headers.append((b"x-forwarded-host", host.encode("latin-1")))
    if target.prefix:
        headers.append((b"x-forwarded-prefix", target.prefix.encode()))
    return headers


def _without_cove_cookies(value: bytes) -> bytes:
    pairs = [pair.strip() for pair in value.split(b";")]
    return b"; ".join(pair for pair in pairs if pair and not pair.startswith(_COVE_COOKIES.encode()))


def _response_headers(headers: Headers, target: urls.Target) -> Headers:
    """The app's response headers as the client gets them: no cookie of Cove's name; for a path-based preview,
    nothing that reaches past its prefix, and redirects to an absolute path kept under it."""
    kept: Headers = []
    for name, value in headers:
        if name == b"set-cookie" and value.lstrip().startswith(_COVE_COOKIES.encode()):
            continue
        if target.prefix:
            if name in _ORIGIN_WIDE:
                continue
            if name == b"location" and value.startswith(b"/") and not value.startswith(b"//"):
                value = target.prefix.encode() + value
        kept.append((name, value))
    return kept
