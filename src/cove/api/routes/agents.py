"""Routes for agent sessions: REST commands, event history, SSE and the WebSocket (see docs/agent-api.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from cove.api.audit import record_socket
from cove.api.auth import PrincipalDep
from cove.api.deps import Services, ServicesDep, services_of
from cove.api.errors import describe_validation_errors, status_for
from cove.api.routes.sandboxes import TenantQuery
from cove.api.sockets import CLIENT_GONE, accept, race, while_valid
from cove.events.log import ScrollbackEnd
from cove.services.errors import CoveServiceError
from cove.services.execs import parse_signal
from cove.services.principal import Principal
from cove.services.sessions import StartRequest
from cove.store.sessions import SessionRecord
from cove.wire import (
    AgentConfigure,
    AgentSession,
    AgentSessionList,
    AgentStart,
    EventPage,
    InterruptResult,
    KillRequest,
    PermissionAnswer,
    PermissionResolved,
    PromptAccepted,
    PromptRequest,
    Usage,
)
from cove.wire.agents import SessionStatus
from cove.wire.bounds import MAX_SEQ

router = APIRouter(tags=["agents"])
ws_router = APIRouter()
SESSION = "/v1/sandboxes/{sandbox_id}/agent/{session_id}"
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
RequestId = Annotated[str, Path(pattern=f"^{_REQUEST_ID.pattern}$", description="perm_…, of permission_requested")]


def session_info(record: SessionRecord, svc: Services) -> AgentSession:
    return AgentSession(
        session_id=record.id,
        sandbox_id=record.sandbox_id,
        status=record.status,
        running=record.status == "running",
        claude_session_id=record.claude_session_id,
        turns=record.turns,
        queued=svc.sessions.queued(record),
        usage=Usage(**record.usage),
        metered_usage=Usage(**record.proxy_usage),
        total_cost_usd=record.total_cost_usd,
        config=record.config,
        resume=record.resume,
        fork=bool(record.fork),
        exit_code=record.exit_code,
        error=record.error,
        last_seq=record.last_seq,
        created_at=record.created_at,
        updated_at=record.updated_at,
        tenant_id=record.tenant_id,
    )


def _options(body: AgentStart | AgentConfigure) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True, exclude={"prompt", "resume", "fork"})
    return fields


@router.post("/v1/sandboxes/{sandbox_id}/agent", status_code=201, response_model=AgentSession)
async def start_session(sandbox_id: str, body: AgentStart, who: PrincipalDep, svc: ServicesDep) -> AgentSession:
    if body.prompt is not None and not body.prompt.strip():
        raise CoveServiceError("prompt must not be empty (omit it to start idle)", code="validation_error")
    request = StartRequest(prompt=body.prompt, config=_options(body), resume=body.resume, fork=body.fork)
    return session_info(await svc.sessions.start(who, sandbox_id, request), svc)


@router.get("/v1/sandboxes/{sandbox_id}/agent", response_model=AgentSessionList)
async def list_sandbox_sessions(sandbox_id: str, who: PrincipalDep, svc: ServicesDep) -> AgentSessionList:
    records = await svc.sessions.list(who, sandbox_id=sandbox_id)
    return AgentSessionList(sessions=[session_info(r, svc) for r in records])


@router.get("/v1/agent-sessions", response_model=AgentSessionList)
async def list_all_sessions(
    who: PrincipalDep,
    svc: ServicesDep,
    status: SessionStatus | None = None,
    sandbox_id: Annotated[str | None, Query(max_length=64)] = None,
    tenant_id: TenantQuery = None,
) -> AgentSessionList:
    records = await svc.sessions.list(who, sandbox_id=sandbox_id, status=status, tenant_id=tenant_id)
    return AgentSessionList(sessions=[session_info(r, svc) for r in records])


@router.get(SESSION, response_model=AgentSession)
async def get_session(sandbox_id: str, session_id: str, who: PrincipalDep, svc: ServicesDep) -> AgentSession:
    return session_info(await svc.sessions.get(who, session_id, sandbox_id), svc)


@router.post(SESSION + "/prompt", response_model=PromptAccepted)
async def prompt(
    sandbox_id: str, session_id: str, body: PromptRequest, who: PrincipalDep, svc: ServicesDep
) -> PromptAccepted:
    return PromptAccepted(**await svc.sessions.prompt(who, sandbox_id, session_id, body.text))


@router.post(SESSION + "/interrupt", response_model=InterruptResult)
async def interrupt(sandbox_id: str, session_id: str, who: PrincipalDep, svc: ServicesDep) -> InterruptResult:
    return InterruptResult(**await svc.sessions.interrupt(who, sandbox_id, session_id))


@router.post(SESSION + "/permissions/{request_id}", response_model=PermissionResolved)
async def answer_permission(
    sandbox_id: str, session_id: str, request_id: RequestId, body: PermissionAnswer, who: PrincipalDep, svc: ServicesDep
) -> PermissionResolved:
    """Allow or deny a tool the agent asked for (``permission_requested``); the first answer is the one (409
    ``already_resolved`` after it)."""
    answer = body.model_dump(exclude_none=True)
    return PermissionResolved(**await svc.sessions.answer_permission(who, sandbox_id, session_id, request_id, answer))


@router.post(SESSION + "/configure", response_model=AgentSession)
async def configure(
    sandbox_id: str, session_id: str, body: AgentConfigure, who: PrincipalDep, svc: ServicesDep
) -> AgentSession:
    record = await svc.sessions.configure(who, sandbox_id, session_id, _options(body))
    return session_info(record, svc)


@router.post(SESSION + "/kill", response_model=AgentSession)
async def kill(
    sandbox_id: str, session_id: str, who: PrincipalDep, svc: ServicesDep, body: KillRequest | None = None
) -> AgentSession:
    signum = parse_signal((body or KillRequest()).signal)
    return session_info(await svc.sessions.kill(who, sandbox_id, session_id, signum), svc)


async def _sse(svc: Services, who: Principal, record: SessionRecord, after: int) -> AsyncIterator[bytes]:
    """Events published together go out in one write; the stream ends when ``who``'s credential stops being
    valid."""
    with svc.streams.watch(who) as ended:
        async for item in svc.sessions.follow(record, after, until=ended):
            if isinstance(item, ScrollbackEnd):
                marker = json.dumps({"type": "scrollback_end", "last_seq": item.last_seq})
                yield f"event: scrollback_end\ndata: {marker}\n\n".encode()
            else:
                yield "".join(f"id: {e.seq}\nevent: {e.type}\ndata: {e.data}\n\n" for e in item).encode()


@router.get(
    SESSION + "/events",
    response_model=EventPage,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON page, or SSE with that Accept"}},
)
async def events(
    sandbox_id: str,
    session_id: str,
    request: Request,
    who: PrincipalDep,
    svc: ServicesDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    record = await svc.sessions.get(who, session_id, sandbox_id)
    if "text/event-stream" in request.headers.get("accept", ""):
        if last_event_id is not None and last_event_id.isdigit() and len(last_event_id) < 20:
            after = min(int(last_event_id), MAX_SEQ)
        return StreamingResponse(
            _sse(svc, who, record, after),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    page = await svc.sessions.events(record, after, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return EventPage(events=[json.loads(e.data) for e in page], last_seq=record.last_seq, has_more=more)


# What each command is in the audit trail: the name of its REST twin.
_ACTIONS = {op: f"agents.{op}" for op in ("prompt", "interrupt", "configure", "kill")} | {
    "permission": "agents.answer_permission"
}


class _Commands:
    """Client → server WebSocket commands, each answered by an ``ack`` carrying the client's ``id``; each that
    acts is recorded in the audit trail."""

    def __init__(self, websocket: WebSocket, who: Principal, sandbox_id: str, session_id: str) -> None:
        self.websocket = websocket
        self.who = who
        self.sandbox_id = sandbox_id
        self.session_id = session_id
        self.svc = services_of(websocket.app)
        self.send_lock = asyncio.Lock()

    async def send_text(self, text: str) -> None:
        async with self.send_lock:
            await self.websocket.send_text(text)

    async def run(self) -> None:
        while True:
            raw = await self.websocket.receive_text()
            request_id: Any = None
            op: Any = None
            try:
                message = json.loads(raw)
                if not isinstance(message, dict):
                    raise ValueError("a command frame must be a JSON object")
                request_id, op = message.pop("id", None), message.pop("op", None)
                result = await self.dispatch(op, message)
                reply = {"type": "ack", "id": request_id, "op": op, "ok": True, "result": result}
            except ValidationError as exc:
                error = {"code": "validation_error", "message": describe_validation_errors(exc.errors()), "status": 422}
                reply = {"type": "ack", "id": request_id, "op": op, "ok": False, "error": error}
            except CoveServiceError as exc:
                error = {"code": exc.code, "message": exc.message, "status": status_for(exc)}
                reply = {"type": "ack", "id": request_id, "op": op, "ok": False, "error": error}
            except ValueError as exc:
                error = {"code": "invalid_frame", "message": f"malformed frame: {exc}", "status": 400}
                reply = {"type": "ack", "id": request_id, "op": op, "ok": False, "error": error}
            if isinstance(op, str) and op in _ACTIONS:
                status = 200 if reply["ok"] else reply["error"]["status"]
                await record_socket(self.websocket, self.who, _ACTIONS[op], self.target, status)
            await self.send_text(json.dumps(reply))

    @property
    def target(self) -> str:
        return f"{self.sandbox_id}/{self.session_id}"

    async def dispatch(self, op: Any, fields: dict[str, Any]) -> Any:
        sessions, who = self.svc.sessions, self.who
        if op == "prompt":
            text = PromptRequest(**fields).text
            return await sessions.prompt(who, self.sandbox_id, self.session_id, text)
        if op == "interrupt":
            return await sessions.interrupt(who, self.sandbox_id, self.session_id)
        if op == "permission":
            request_id = fields.pop("request_id", None)
            if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
                raise ValueError("permission needs a request_id (perm_…, of a permission_requested event)")
            answer = PermissionAnswer(**fields).model_dump(exclude_none=True)
            return await sessions.answer_permission(who, self.sandbox_id, self.session_id, request_id, answer)
        if op == "configure":
            changes = _options(AgentConfigure(**fields))
            record = await sessions.configure(who, self.sandbox_id, self.session_id, changes)
            return session_info(record, self.svc).model_dump()
        if op == "kill":
            signum = parse_signal(KillRequest(**fields).signal)
            record = await sessions.kill(who, self.sandbox_id, self.session_id, signum)
            return session_info(record, self.svc).model_dump()
        raise ValueError(f"unknown op {op!r}; expected prompt, interrupt, configure, kill or permission")


@ws_router.websocket(SESSION + "/ws")
async def session_socket(websocket: WebSocket, sandbox_id: str, session_id: str) -> None:
    """Replay after ``?after=N``, ``scrollback_end``, then live events; commands in the other direction."""
    who = await accept(websocket)
    if who is not None:
        await while_valid(websocket, who, _session_traffic(websocket, who, sandbox_id, session_id))


async def _session_traffic(websocket: WebSocket, who: Principal, sandbox_id: str, session_id: str) -> None:
    svc = services_of(websocket.app)
    try:
        after = int(websocket.query_params.get("after", "0"))
        # With batch=N up to N events share a frame, one JSON object per line: a 100,000-event replay is then a
        # few hundred frames instead of 100,000, and live events published together (a turn's result and
        # turn_complete) arrive together.
        batch = int(websocket.query_params.get("batch", "1"))
        if not 0 <= after <= MAX_SEQ or not 1 <= batch <= 1000:
            raise ValueError
        record = await svc.sessions.get(who, session_id, sandbox_id)
    except ValueError:
        message = "after must be >= 0 and batch between 1 and 1000"
        await websocket.send_json({"type": "error", "code": "validation_error", "message": message})
        await websocket.close(code=4422)
        return
    except CoveServiceError as exc:
        await websocket.send_json({"type": "error", "code": exc.code, "message": exc.message})
        await websocket.close(code=4000 + status_for(exc) % 1000)
        return
    commands = _Commands(websocket, who, sandbox_id, record.id)

    async def stream() -> None:
        async for item in svc.sessions.follow(record, after):
            if isinstance(item, ScrollbackEnd):
                await commands.send_text(json.dumps({"type": "scrollback_end", "last_seq": item.last_seq}))
                continue
            for start in range(0, len(item), batch):
                await commands.send_text("\n".join(event.data for event in item[start : start + batch]))

    try:
        for task in await race(stream(), commands.run()):
            error = task.exception()
            if error is not None and not isinstance(error, CLIENT_GONE):
                raise error
    finally:
        with contextlib.suppress(Exception):
            await websocket.close()
