"""Routes for terminals: create, list, resize, signal and kill over REST; their bytes over a WebSocket.

WebSocket ``/v1/sandboxes/{id}/pty/{pty_id}/ws?offset=N``: binary frames are the terminal's bytes, both ways
(output to the client, input from it, unencoded). Text frames are JSON. Server → client: ``attached`` (the
terminal, and ``offset``: where the output that follows starts), ``offset`` (the output skips ahead to there: the
client fell further behind than the terminal keeps), ``exit`` (the terminal, once its program ended and every
byte was sent), ``error``. Client → server: ``resize`` (``cols``, ``rows``), ``signal`` (``signal``). Without
``offset`` the output starts with all the terminal keeps (its recent screen); with the offset just past the last
byte received, a client that reconnects misses nothing the terminal still holds.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep, services_of
from cove.api.routes.execs import _guarded, _send_error
from cove.api.sockets import CLIENT_GONE, race
from cove.runtime.guest_client import GuestUnavailable, Output, ProcessStream
from cove.services.errors import CoveServiceError
from cove.services.execs import parse_signal, shell
from cove.services.principal import Principal
from cove.services.ptys import PtyRequest
from cove.wire import SignalRequest
from cove.wire.ptys import PtyCreate, PtyInfo, PtyList, PtyResize

router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}/pty", tags=["pty"])
ws_router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}/pty")


@router.post("", response_model=PtyInfo, status_code=201)
async def create_pty(sandbox_id: str, body: PtyCreate, who: PrincipalDep, svc: ServicesDep) -> PtyInfo:
    command = shell(body.command) if isinstance(body.command, str) else body.command
    request = PtyRequest(command=command, cols=body.cols, rows=body.rows, env=body.env, cwd=body.cwd)
    return PtyInfo(**await svc.ptys.create(who, sandbox_id, request))


@router.get("", response_model=PtyList)
async def list_ptys(sandbox_id: str, who: PrincipalDep, svc: ServicesDep) -> PtyList:
    return PtyList(ptys=[PtyInfo(**info) for info in await svc.ptys.list(who, sandbox_id)])


@router.get("/{pty_id}", response_model=PtyInfo)
async def get_pty(sandbox_id: str, pty_id: str, who: PrincipalDep, svc: ServicesDep) -> PtyInfo:
    return PtyInfo(**await svc.ptys.get(who, sandbox_id, pty_id))


@router.post("/{pty_id}/resize", response_model=PtyInfo)
async def resize_pty(sandbox_id: str, pty_id: str, body: PtyResize, who: PrincipalDep, svc: ServicesDep) -> PtyInfo:
    return PtyInfo(**await svc.ptys.resize(who, sandbox_id, pty_id, body.cols, body.rows))


@router.post("/{pty_id}/signal", response_model=PtyInfo)
async def signal_pty(sandbox_id: str, pty_id: str, body: SignalRequest, who: PrincipalDep, svc: ServicesDep) -> PtyInfo:
    return PtyInfo(**await svc.ptys.signal(who, sandbox_id, pty_id, parse_signal(body.signal)))


@router.delete("/{pty_id}", response_model=PtyInfo)
async def kill_pty(sandbox_id: str, pty_id: str, who: PrincipalDep, svc: ServicesDep) -> PtyInfo:
    """SIGKILL to the terminal's program; what it ran in the foreground is hung up with the terminal."""
    return PtyInfo(**await svc.ptys.signal(who, sandbox_id, pty_id, parse_signal("SIGKILL")))


async def _send_output(websocket: WebSocket, stream: ProcessStream, offset: int) -> None:
    async for item in stream:
        if isinstance(item, Output):
            if item.offset != offset:
                await websocket.send_json({"type": "offset", "offset": item.offset})
            await websocket.send_bytes(item.data)
            offset = item.offset + len(item.data)
        else:
            await websocket.send_json({"type": "exit", "pty": PtyInfo(**item.info).model_dump()})


async def _take_input(websocket: WebSocket, stream: ProcessStream) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("bytes") is not None:
            await stream.send_stdin(message["bytes"])
            continue
        try:
            frame: Any = json.loads(message.get("text") or "")
            if not isinstance(frame, dict):
                raise ValueError("a text frame is a JSON object")
            if frame.get("type") == "resize":
                await stream.resize(*_size(frame))
            elif frame.get("type") == "signal":
                await stream.signal(parse_signal(frame.get("signal", "SIGINT")))
            else:
                raise ValueError(f"unknown frame type {frame.get('type')!r:.40}; expected resize or signal")
        except (ValueError, CoveServiceError) as exc:
            await _send_error(websocket, "invalid_frame", str(exc))


def _size(frame: dict[str, Any]) -> tuple[int, int]:
    size = PtyResize.model_validate({"cols": frame.get("cols"), "rows": frame.get("rows")})
    return size.cols, size.rows


@ws_router.websocket("/{pty_id}/ws")
async def pty_stream(
    websocket: WebSocket, sandbox_id: str, pty_id: str, offset: Annotated[int | None, Query(ge=0)] = None
) -> None:
    async def body(who: Principal) -> None:
        async with services_of(websocket.app).ptys.attach(who, sandbox_id, pty_id, offset) as stream:
            start = int(stream.info["offset"])
            await websocket.send_json({"type": "attached", "pty": PtyInfo(**stream.info).model_dump(), "offset": start})
            for task in await race(_send_output(websocket, stream, start), _take_input(websocket, stream)):
                error = task.exception()
                if isinstance(error, GuestUnavailable | ConnectionError):  # the sandbox went away mid-stream
                    await _send_error(websocket, "sandbox_unavailable", str(error) or type(error).__name__)
                elif error is not None and not isinstance(error, CLIENT_GONE):
                    raise error

    await _guarded(websocket, body)
