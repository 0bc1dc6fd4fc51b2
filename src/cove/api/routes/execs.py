"""Routes for commands: run to completion, background processes, and WebSocket streams with stdin.

WebSocket frames are JSON text. Server → client: ``started``/``attached`` (the process), ``stdout``/``stderr``
(``offset`` = byte offset of the chunk in that stream, ``data`` = base64), ``exit`` (the process), ``error``.
Client → server: ``stdin`` (``data`` base64 or ``text``), ``stdin_close``, ``signal`` (``signal``).
Re-attaching with the offsets of the last bytes received replays exactly what was missed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from cove.api.audit import record_socket
from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep, services_of
from cove.api.errors import status_for
from cove.api.sockets import CLIENT_GONE, accept, race, while_valid
from cove.runtime.guest_client import GuestUnavailable, Output, ProcessStream
from cove.services.errors import CoveServiceError, InvalidRequest
from cove.services.execs import ExecRequest, parse_signal, shell
from cove.services.principal import Principal
from cove.wire import ExecCommand, ExecResult, ProcessInfo, ProcessList, SignalRequest

router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}", tags=["exec"])
ws_router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}")


def exec_request(body: ExecCommand) -> ExecRequest:
    command = shell(body.command) if isinstance(body.command, str) else body.command
    if not command or (isinstance(body.command, str) and not body.command.strip()):
        raise InvalidRequest("command must not be empty")
    return ExecRequest(command=command, env=body.env, cwd=body.cwd, timeout=body.timeout, tag=body.tag)


@router.post("/exec", response_model=ExecResult | ProcessInfo)
async def run_command(
    sandbox_id: str, body: ExecCommand, who: PrincipalDep, svc: ServicesDep
) -> ExecResult | ProcessInfo:
    request = exec_request(body)
    if body.background:
        if body.stdin is not None:
            raise InvalidRequest("stdin text cannot be given to a background command; stream it over the WebSocket")
        return ProcessInfo(**await svc.execs.start(who, sandbox_id, request))
    stdin = body.stdin.encode() if body.stdin is not None else None
    result = await svc.execs.run(who, sandbox_id, request, stdin=stdin)
    return ExecResult(
        process_id=result.process_id,
        exit_code=result.exit_code,
        stdout=result.stdout.decode(errors="replace"),
        stderr=result.stderr.decode(errors="replace"),
        duration=result.duration,
        timed_out=result.timed_out,
        signal=result.signal,
        oom_killed=result.oom_killed,
        truncated=result.truncated,
    )


@router.get("/processes", response_model=ProcessList)
async def list_processes(sandbox_id: str, who: PrincipalDep, svc: ServicesDep) -> ProcessList:
    return ProcessList(processes=[ProcessInfo(**p) for p in await svc.execs.list(who, sandbox_id)])


@router.get("/processes/{process_id}", response_model=ProcessInfo)
async def get_process(sandbox_id: str, process_id: str, who: PrincipalDep, svc: ServicesDep) -> ProcessInfo:
    return ProcessInfo(**await svc.execs.get(who, sandbox_id, process_id))


@router.post("/processes/{process_id}/signal", response_model=ProcessInfo)
async def signal_process(
    sandbox_id: str, process_id: str, body: SignalRequest, who: PrincipalDep, svc: ServicesDep
) -> ProcessInfo:
    return ProcessInfo(**await svc.execs.signal(who, sandbox_id, process_id, parse_signal(body.signal)))


@router.delete("/processes/{process_id}", response_model=ProcessInfo)
async def kill_process(sandbox_id: str, process_id: str, who: PrincipalDep, svc: ServicesDep) -> ProcessInfo:
    return ProcessInfo(**await svc.execs.signal(who, sandbox_id, process_id, parse_signal("SIGKILL")))


async def _send_error(websocket: WebSocket, code: str, message: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_json({"type": "error", "code": code, "message": message})


async def _pump_output(websocket: WebSocket, stream: ProcessStream) -> None:
    async for item in stream:
        if isinstance(item, Output):
            data = base64.b64encode(item.data).decode()
            await websocket.send_json({"type": item.stream, "offset": item.offset, "data": data})
        else:
            await websocket.send_json({"type": "exit", "process": ProcessInfo(**item.info).model_dump()})


async def _pump_input(websocket: WebSocket, stream: ProcessStream) -> None:
    while True:
        raw = await websocket.receive_text()
        try:
            message: Any = json.loads(raw)
            if not isinstance(message, dict):
                raise ValueError("frame is not a JSON object")
            kind = message.get("type")
            if kind == "stdin":
                if "text" in message:
                    data = str(message["text"]).encode()
                else:
                    data = base64.b64decode(str(message.get("data", "")), validate=True)
                await stream.send_stdin(data)
            elif kind == "stdin_close":
                await stream.close_stdin()
            elif kind == "signal":
                await stream.signal(parse_signal(message.get("signal", "SIGTERM")))
            else:
                raise ValueError(f"unknown frame type {kind!r:.40}; expected stdin, stdin_close or signal")
        except (ValueError, binascii.Error, CoveServiceError) as exc:
            await _send_error(websocket, "invalid_frame", str(exc))
        except ConnectionError:
            # The process ended and the guest closed its stream: its exit is on the way (the output pump), and
            # input sent after that goes nowhere, as it would to any exited process.
            continue


async def _serve_stream(websocket: WebSocket, stream: ProcessStream, hello: str) -> None:
    await websocket.send_json({"type": hello, "process": ProcessInfo(**stream.info).model_dump()})
    for task in await race(_pump_output(websocket, stream), _pump_input(websocket, stream)):
        error = task.exception()
        if isinstance(error, GuestUnavailable | ConnectionError):  # the sandbox went away mid-stream
            await _send_error(websocket, "sandbox_unavailable", str(error) or type(error).__name__)
        elif error is not None and not isinstance(error, CLIENT_GONE):
            raise error


async def _guarded(websocket: WebSocket, body: Callable[[Principal], Coroutine[Any, Any, None]]) -> None:
    """Authenticate, accept, run ``body`` while the credential stays valid; a refusal is an ``error`` frame and
    a close with 4000 + its HTTP status."""
    who = await accept(websocket)
    if who is None:
        return

    async def traffic() -> None:
        try:
            await body(who)
        except CoveServiceError as exc:
            await _send_error(websocket, exc.code, exc.message)
            await websocket.close(code=4000 + status_for(exc) % 1000)
            return
        except WebSocketDisconnect:
            return
        with contextlib.suppress(Exception):
            await websocket.close()

    await while_valid(websocket, who, traffic())


@ws_router.websocket("/exec/ws")
async def exec_stream(websocket: WebSocket, sandbox_id: str) -> None:
    """The first client frame is the command (the body of POST /exec, without ``background``)."""

    async def body(who: Principal) -> None:
        try:
            command = ExecCommand.model_validate_json(await websocket.receive_text())
        except ValidationError as exc:
            raise InvalidRequest(f"first frame must be a command: {exc.errors()[0]['msg']}") from exc
        request = exec_request(command)
        request = ExecRequest(**{**request.__dict__, "stdin": True})
        started = False  # a command started is recorded as it starts; one refused, with the refusal's status
        try:
            async with services_of(websocket.app).execs.stream(who, sandbox_id, request) as stream:
                started = True
                await record_socket(websocket, who, "execs.exec_stream", sandbox_id, 200)
                await _serve_stream(websocket, stream, "started")
        except CoveServiceError as exc:
            if not started:
                await record_socket(websocket, who, "execs.exec_stream", sandbox_id, status_for(exc))
            raise

    await _guarded(websocket, body)


@ws_router.websocket("/processes/{process_id}/ws")
async def attach_stream(
    websocket: WebSocket,
    sandbox_id: str,
    process_id: str,
    stdout_offset: Annotated[int, Query(ge=0)] = 0,
    stderr_offset: Annotated[int, Query(ge=0)] = 0,
) -> None:
    async def body(who: Principal) -> None:
        execs = services_of(websocket.app).execs
        async with execs.attach(who, sandbox_id, process_id, stdout_offset, stderr_offset) as stream:
            await _serve_stream(websocket, stream, "attached")

    await _guarded(websocket, body)
