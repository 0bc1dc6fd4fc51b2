"""Agent sessions in the SDK: start, steer and follow a Claude Code session running in a sandbox.

A session handle follows the session's events over a WebSocket and re-connects by itself from the last ``seq``
it saw, so a dropped connection loses and repeats nothing. Commands go over that WebSocket while it is connected,
over plain HTTP otherwise.

Approvals: the handle keeps the session's pending permission requests (``permission_requested`` events with no
``permission_resolved`` yet) and, given ``on_permission``, asks it about each — the ones still pending when the
replay ends, then each new one — and sends its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from cove.sdk._client import AsyncClient
from cove.sdk._errors import (
    AgentError,
    AlreadyResolved,
    ConnectionLost,
    CoveError,
    SessionExited,
    TurnNotFound,
    error_from,
)
from cove.sdk._teams import mint_token
from cove.wire import AgentSession as SessionInfo
from cove.wire import (
    InterruptResult,
    ModelInfo,
    PermissionAnswer,
    PermissionResolved,
    PromptAccepted,
    Scope,
    TokenCreated,
)
from cove.wire.turns import TurnDiff

EventCallback = Callable[["AgentEvent"], Any]
ErrorCallback = Callable[[Exception], Any]
Decision = PermissionAnswer | bool | Literal["allow", "deny", "always"] | None
PermissionCallback = Callable[["PermissionRequest"], Any]
"""Called with each pending request; returns (or, if async, resolves to) a :data:`Decision`."""
RECONNECT_ATTEMPTS = 8
ENDED = ("exited", "failed")


class AgentEvent(Mapping[str, Any]):
    """One event of a session: ``event.type``, ``event.seq`` and dict-style access to every field.

    >>> event["claude_session_id"] if event.type == "turn_complete" else None
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @property
    def type(self) -> str:
        return str(self._data.get("type"))

    @property
    def seq(self) -> int:
        return int(self._data.get("seq", 0))

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"AgentEvent({self._data!r})"


@dataclass(frozen=True)
class PermissionRequest:
    """A tool the agent asked to use and is waiting for (a ``permission_requested`` event not resolved yet)."""

    request_id: str
    tool_name: str
    input: dict[str, Any]
    suggestions: list[dict[str, Any]]
    """Claude Code's suggested rules, which ``approve(remember=True)`` applies."""
    tool_use_id: str | None
    event: AgentEvent

    @classmethod
    def of(cls, event: AgentEvent) -> PermissionRequest | None:
        """The request an event carries, or None when it is malformed (events are the sandbox's word)."""
        data = event.data
        request_id, tool_name, tool_input = data.get("request_id"), data.get("tool_name"), data.get("input")
        if not (isinstance(request_id, str) and isinstance(tool_name, str) and isinstance(tool_input, dict)):
            return None
        suggestions = data.get("suggestions")
        tool_use_id = data.get("tool_use_id")
        return cls(
            request_id,
            tool_name,
            tool_input,
            [s for s in suggestions if isinstance(s, dict)] if isinstance(suggestions, list) else [],
            tool_use_id if isinstance(tool_use_id, str) else None,
            event,
        )


def as_answer(decision: Decision) -> PermissionAnswer | None:
    """An ``on_permission`` callback's decision as an answer: ``True``/``"allow"``, ``False``/``"deny"``,
    ``"always"`` (allow, and remember), a :class:`PermissionAnswer` as it is, or None: no answer (another client,
    or a person, answers)."""
    if decision is None or isinstance(decision, PermissionAnswer):
        return decision
    if decision is True or decision == "allow":
        return PermissionAnswer(decision="allow")
    if decision == "always":
        return PermissionAnswer(decision="allow", remember=True)
    if decision is False or decision == "deny":
        return PermissionAnswer(decision="deny")
    raise ValueError(f"on_permission returned {decision!r}; expected a bool, allow, deny, always or a PermissionAnswer")


AgentSessionEnded = SessionExited
"""The name this error had before docs/names.md gave both SDKs one: kept so that existing code still runs."""


async def _call(callback: Callable[[Any], Any] | None, value: Any) -> None:
    if callback is None:
        return
    result = callback(value)
    if inspect.isawaitable(result):
        await result


class AsyncAgentSession:
    """A live handle on one agent session."""

    def __init__(
        self,
        client: AsyncClient,
        info: SessionInfo,
        *,
        on_event: EventCallback | None = None,
        on_error: ErrorCallback | None = None,
        on_permission: PermissionCallback | None = None,
        after: int = 0,
    ) -> None:
        self._client = client
        self.info = info
        self._path = f"/v1/sandboxes/{info.sandbox_id}/agent/{info.session_id}"
        self._on_event = on_event
        self._on_error = on_error
        self._on_permission = on_permission
        self._pending: dict[str, PermissionRequest] = {}
        self._asked: set[str] = set()  # requests on_permission was called for
        self._deciding: set[asyncio.Task[None]] = set()
        self._cursor = after
        self._history: list[AgentEvent] = []
        self._changed = asyncio.Condition()
        self._completed_turn = 0
        self._target_turn = 0
        self._ended = False
        self._failure: CoveError | None = None
        self._last_turn_complete: AgentEvent | None = None
        self._exit: AgentEvent | None = None
        self._scrollback = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        # While the event stream is connected, commands go over it (see _command); acks come back by id.
        self._socket: ClientConnection | None = None
        self._acks: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._command_ids = itertools.count(1)

    @property
    def session_id(self) -> str:
        return self.info.session_id

    @property
    def sandbox_id(self) -> str:
        return self.info.sandbox_id

    @property
    def claude_session_id(self) -> str | None:
        """The conversation's id — what to pass as ``resume`` to continue it in a new session."""
        for event in reversed(self._history):
            if event.get("claude_session_id"):
                return str(event["claude_session_id"])
        return self.info.claude_session_id

    def _start_following(self) -> None:
        self._reader = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        failures = 0
        while not self._ended:
            try:
                # batch: events come many to a frame, one per line (replay pages, live batches; docs/agent-api.md).
                socket = await self._client.websocket(f"{self._path}/ws", {"after": self._cursor, "batch": 500})
                async with socket:
                    self._socket = socket
                    try:
                        async for raw in socket:
                            failures = 0
                            for line in str(raw).split("\n"):
                                await self._receive(json.loads(line))
                    finally:
                        self._socket = None
                        self._drop_acks()
                if self._ended or await self._ended_before_cursor():
                    return
            except (ConnectionClosed, ConnectionLost, OSError):
                pass
            except CoveError as exc:
                await self._fail(exc)
                return
            failures += 1
            if failures > RECONNECT_ATTEMPTS:
                await self._fail(ConnectionLost(f"lost the event stream of {self.session_id} and could not resume"))
                return
            await asyncio.sleep(min(0.05 * 2**failures, 2.0))

    async def _receive(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ack":
            waiter = self._acks.pop(message.get("id"), None)  # type: ignore[arg-type]
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            return
        if kind == "scrollback_end":
            self._scrollback.set()
            for pending in list(self._pending.values()):
                self._ask(pending)
            return
        if kind == "error" and "seq" not in message:
            raise error_from(0, str(message.get("code", "error")), str(message.get("message", "stream refused")))
        seq = int(message.get("seq", 0))
        if seq <= self._cursor:
            return  # already delivered before a reconnect
        self._cursor = seq
        event = AgentEvent(message)
        async with self._changed:
            self._history.append(event)
            if kind == "turn_complete":
                self._completed_turn = max(self._completed_turn, int(message.get("turn") or 0))
                self._last_turn_complete = event
            elif kind == "turn_started":
                self._target_turn = max(self._target_turn, int(message.get("turn") or 0))
            elif kind == "exit":
                self._ended = True
                self._exit = event
                self._pending.clear()
            self._changed.notify_all()
        if kind == "permission_requested" and (request := PermissionRequest.of(event)) is not None:
            self._pending[request.request_id] = request
            if self._scrollback.is_set():
                self._ask(request)
        elif kind == "permission_resolved":
            self._pending.pop(str(message.get("request_id")), None)
        await _call(self._on_event, event)
        if kind == "error":
            await _call(self._on_error, AgentError(message))

    def _ask(self, request: PermissionRequest) -> None:
        """Hand a pending request to ``on_permission`` (once), off the event stream: a person may take a while."""
        if self._on_permission is None or request.request_id in self._asked:
            return
        self._asked.add(request.request_id)
        task = asyncio.create_task(self._decide(self._on_permission, request))
        self._deciding.add(task)
        task.add_done_callback(self._deciding.discard)

    async def _decide(self, callback: PermissionCallback, request: PermissionRequest) -> None:
        try:
            # A plain function runs in a worker thread, so it may block (to ask someone at a terminal, say).
            if inspect.iscoroutinefunction(callback):
                decision = await callback(request)
            else:
                decision = await asyncio.to_thread(callback, request)
            answer = as_answer(decision)
            if answer is not None and request.request_id in self._pending:
                await self._answer(request.request_id, answer)
        except AlreadyResolved:
            pass  # another client, the timeout or an interrupt decided first
        except CoveError as exc:
            await _call(self._on_error, exc)
        except Exception as exc:
            await _call(self._on_error, CoveError(f"on_permission failed: {exc!r}", code="callback_error"))

    @property
    def pending_permissions(self) -> list[PermissionRequest]:
        """The tools the agent is waiting to be allowed or denied, oldest first."""
        return list(self._pending.values())

    async def approve(
        self, request_id: str, *, updated_input: dict[str, Any] | None = None, remember: bool = False
    ) -> PermissionResolved:
        """Allow a pending tool use (``remember``: apply Claude Code's suggested rule, so it is not asked again,
        e.g. accepting edits for the rest of the session). Raises ``AlreadyResolved`` if it was decided before.

        >>> for request in session.pending_permissions:
        ...     await session.approve(request.request_id)
        """
        return await self._answer(
            request_id, PermissionAnswer(decision="allow", updated_input=updated_input, remember=remember)
        )

    async def deny(self, request_id: str, message: str | None = None) -> PermissionResolved:
        """Deny a pending tool use; ``message`` is what the agent is told."""
        return await self._answer(request_id, PermissionAnswer(decision="deny", message=message))

    async def _answer(self, request_id: str, answer: PermissionAnswer) -> PermissionResolved:
        fields = answer.model_dump(exclude_none=True)
        result = await self._command("permission", path=f"permissions/{request_id}", request_id=request_id, **fields)
        return PermissionResolved(**result)

    async def _ended_before_cursor(self) -> bool:
        """The server ended the stream with no ``exit`` after the cursor: whether the session ended at or before
        it (an attach after the exit), so that nothing more will come — else the stream is resumed."""
        info = await self.refresh()
        if info.status not in ENDED or info.last_seq > self._cursor:
            return False
        page = await self._client.request("GET", f"{self._path}/events", params={"after": max(info.last_seq - 1, 0)})
        async with self._changed:
            self._exit = next((AgentEvent(e) for e in page["events"] if e.get("type") == "exit"), None)
            self._ended = True
            self._changed.notify_all()
        return True

    async def _fail(self, error: CoveError) -> None:
        async with self._changed:
            self._failure = error
            self._ended = True
            self._changed.notify_all()
        await _call(self._on_error, error)

    def _expect_turn(self, turn: int) -> None:
        self._target_turn = max(self._target_turn, turn)

    @property
    def done(self) -> asyncio.Task[AgentEvent]:
        """Resolves with the ``turn_complete`` of the current turn (or the last one sent; the first one, when no
        prompt was sent yet) — not at process exit.

        >>> await session.done
        >>> await session.send_prompt("and now?")
        >>> await session.done   # waits for that new turn
        """
        target = max(self._target_turn, 1)
        return asyncio.ensure_future(self._wait_turn(target))

    async def _wait_turn(self, target: int) -> AgentEvent:
        async with self._changed:
            await self._changed.wait_for(lambda: self._completed_turn >= target or self._ended)
            if self._completed_turn >= target and self._last_turn_complete is not None:
                return self._last_turn_complete
            if self._failure is not None:
                raise self._failure
            raise SessionExited(f"session {self.session_id} ended before turn {target} completed{self._last_error()}")

    def _last_error(self) -> str:
        """Why the session ended, as its last ``error`` event says (a bad cwd, a failed resume…), if it said."""
        error = next((event for event in reversed(self._history) if event.type == "error"), None)
        return f" ({error.get('code')}: {error.get('message')})" if error is not None else ""

    async def wait_exit(self) -> AgentEvent:
        """Wait for the session's ``exit`` event."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._ended)
        if self._failure is not None:
            raise self._failure
        if self._exit is None:
            raise SessionExited(f"session {self.session_id} ended without an exit event in its log")
        return self._exit

    async def wait_scrollback(self) -> None:
        """Wait until everything that happened before this handle connected has been delivered."""
        await self._scrollback.wait()

    async def _command(
        self, op: str, path: str | None = None, request_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A command's result: sent over the connected event stream (a frame each way instead of an HTTP
        request), or as ``POST .../{path or op}`` when no stream is connected or the frame could not be sent (then
        nothing reached the server). A ``request_id`` goes in the frame, or in the ``path``."""
        addressed = {"request_id": request_id} if request_id is not None else {}
        result = await self._over_socket(op, **addressed, **fields)
        if result is None:
            result = await self._client.request("POST", f"{self._path}/{path or op}", json=fields or None)
        return result

    async def _over_socket(self, op: str, **fields: Any) -> dict[str, Any] | None:
        socket = self._socket
        if socket is None:
            return None
        command_id = next(self._command_ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[command_id] = waiter
        try:
            await socket.send(json.dumps({"id": command_id, "op": op, **fields}))
        except (ConnectionClosed, OSError):
            self._acks.pop(command_id, None)
            return None
        ack = await waiter
        if not ack.get("ok"):
            error = ack.get("error") or {}
            code = str(error.get("code", "error"))
            status = int(error.get("status", 400))  # the status the same refusal gets over HTTP
            raise error_from(status, code, str(error.get("message", f"{op} refused")))
        result: dict[str, Any] = ack.get("result") or {}
        return result

    def _drop_acks(self) -> None:
        """The stream closed: commands sent on it may or may not have been carried out."""
        acks, self._acks = self._acks, {}
        for waiter in acks.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost("the connection closed before the server answered the command"))

    async def send_prompt(self, text: str) -> PromptAccepted:
        """Queue a prompt (FIFO while a turn runs); ``done`` then waits for its turn."""
        accepted = PromptAccepted(**await self._command("prompt", text=text))
        self._expect_turn(accepted.turn)
        return accepted

    async def interrupt(self) -> InterruptResult:
        """Abort the running turn at once; says whether a turn was running."""
        return InterruptResult(**await self._command("interrupt"))

    async def configure(self, **changes: Any) -> SessionInfo:
        """Change model, system_prompt, allowed_tools, disallowed_tools, permission_mode, max_turns, cwd or
        mcp_servers from the next turn on; the conversation is kept."""
        self.info = SessionInfo(**await self._command("configure", **changes))
        return self.info

    async def kill(self, signal: str | int = "SIGTERM") -> SessionInfo:
        """Stop the session; the server answers once its ``exit`` is in the log.

        Over REST even while the event stream is open: the server ends the stream after ``exit``, which can
        come before the acknowledgement of a kill sent on it."""
        self.info = SessionInfo(**await self._client.request("POST", f"{self._path}/kill", json={"signal": signal}))
        if self._reader is not None:  # let a following handle see the exit event too
            with contextlib.suppress(CoveError, TimeoutError):
                await asyncio.wait_for(self.wait_exit(), 10)
        return self.info

    async def create_token(self, scopes: Iterable[Scope], *, ttl_s: int = 3600) -> TokenCreated:
        """A token for this session alone, with ``scopes`` (``read``: its events; ``prompt``: prompt, interrupt,
        configure; ``approve``: answer its permission requests), for ``ttl_s`` seconds — for a page that shows
        one session to one user.

        >>> watcher = await session.create_token(["read", "approve"], ttl_s=3600)
        """
        return await mint_token(self._client, self.sandbox_id, self.session_id, scopes, ttl_s)

    async def refresh(self) -> SessionInfo:
        self.info = SessionInfo(**await self._client.request("GET", self._path))
        return self.info

    async def diff_pages(self, turn: int | None = None, *, limit: int | None = None) -> AsyncIterator[TurnDiff]:
        """A turn's unified diff a page at a time (whole lines, ``limit`` bytes at most; the server's default is
        256 KiB), for diffs too big to hold; ``turn`` defaults to the last turn that completed."""
        if turn is None:
            turn = (await self.refresh()).turns
            if turn < 1:
                raise TurnNotFound(f"no turn of session {self.session_id} has completed yet", status=404)
        cursor: str | None = None
        while True:
            params = {"cursor": cursor, "limit": limit}
            reply = await self._client.request(
                "GET", f"{self._path}/turns/{turn}/diff", params={k: v for k, v in params.items() if v is not None}
            )
            page = TurnDiff(**reply)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def diff(self, turn: int | None = None) -> TurnDiff:
        """What a turn changed under /workspace (default: the last turn that completed), as ``git diff`` writes
        it, every page joined: ``files`` is the turn's ``files_changed`` in full, ``diff`` the whole patch.

        >>> changes = await session.diff()
        >>> [(f.change, f.path, f.additions, f.deletions) for f in changes.files]
        [('added', 'fib.py', 12, 0)]
        """
        pages = [page async for page in self.diff_pages(turn)]
        files = [change for page in pages for change in page.files]
        # A file whose diff goes on over a page break is on both pages.
        unique = [change for index, change in enumerate(files) if index == 0 or change != files[index - 1]]
        text = "".join(page.diff for page in pages)
        return TurnDiff(turn=pages[0].turn, files=unique, diff=text, next_cursor=None, total_files=pages[0].total_files)

    async def events(self) -> AsyncIterator[AgentEvent]:
        """Every event this handle has received, then the new ones as they come, until the session exits."""
        index = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._has_news, index))
                batch = self._history[index:]
                ended = self._ended
            for event in batch:
                yield event
            index += len(batch)
            if ended and index >= len(self._history):
                return

    def _has_news(self, index: int) -> bool:
        return index < len(self._history) or self._ended

    async def collect_events(self, after: int = 0) -> list[AgentEvent]:
        """The session's whole stored history after ``after``, fetched page by page over HTTP."""
        collected: list[AgentEvent] = []
        while True:
            page = await self._client.request("GET", f"{self._path}/events", params={"after": after, "limit": 5000})
            collected.extend(AgentEvent(e) for e in page["events"])
            if not page["has_more"]:
                return collected
            after = collected[-1].seq

    async def close(self) -> None:
        """Stop following (the session itself keeps running)."""
        for task in list(self._deciding):
            task.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


class AsyncAgents:
    """``sandbox.agent``: the agent sessions of one sandbox."""

    def __init__(self, client: AsyncClient, sandbox_id: str) -> None:
        self._client = client
        self._path = f"/v1/sandboxes/{sandbox_id}/agent"

    async def start(
        self,
        prompt: str | None = None,
        *,
        on_event: EventCallback | None = None,
        on_error: ErrorCallback | None = None,
        on_permission: PermissionCallback | None = None,
        resume: str | None = None,
        fork: bool = False,
        model: str | None = None,
        system_prompt: str | None = None,
        allowed_tools: list[str] | None = None,
        disallowed_tools: list[str] | None = None,
        permission_mode: str | None = None,
        max_turns: int | None = None,
        cwd: str | None = None,
        mcp_servers: dict[str, Any] | None = None,
        permission_timeout_s: float | None = None,
    ) -> AsyncAgentSession:
        """Start Claude Code in the sandbox; with ``resume=<claude_session_id>`` continue that conversation
        (``fork=True`` branches it). A resume that cannot find its conversation raises instead of starting.

        With a ``permission_mode`` that asks (``default``, ``acceptEdits``, ``plan``), ``on_permission`` decides
        each tool the agent asks for (see :data:`Decision`); without it, answer with ``approve``/``deny``.

        >>> session = await sandbox.agent.start(
        ...     "Write notes.txt", permission_mode="default", on_permission=lambda r: r.tool_name == "Write"
        ... )"""
        body = {
            "prompt": prompt,
            "resume": resume,
            "fork": fork,
            "model": model,
            "system_prompt": system_prompt,
            "allowed_tools": allowed_tools,
            "disallowed_tools": disallowed_tools,
            "permission_mode": permission_mode,
            "max_turns": max_turns,
            "cwd": cwd,
            "mcp_servers": mcp_servers,
            "permission_timeout_s": permission_timeout_s,
        }
        info = SessionInfo(
            **await self._client.request("POST", self._path, json={k: v for k, v in body.items() if v is not None})
        )
        session = AsyncAgentSession(
            self._client, info, on_event=on_event, on_error=on_error, on_permission=on_permission
        )
        if prompt:
            session._expect_turn(1)
        session._start_following()
        return session

    async def attach(
        self,
        session_id: str,
        *,
        on_event: EventCallback | None = None,
        on_error: ErrorCallback | None = None,
        on_permission: PermissionCallback | None = None,
        after: int = 0,
    ) -> AsyncAgentSession:
        """Re-connect to a session: the events after ``after`` are replayed, then live ones follow. The requests
        still pending when the replay ends go to ``on_permission``, then each new one."""
        info = SessionInfo(**await self._client.request("GET", f"{self._path}/{session_id}"))
        session = AsyncAgentSession(
            self._client, info, on_event=on_event, on_error=on_error, on_permission=on_permission, after=after
        )
        session._expect_turn(info.turns + info.queued + (1 if info.running else 0))
        session._start_following()
        return session

    async def session(self, session_id: str) -> AsyncAgentSession:
        """A handle for commands only (prompt, interrupt, configure, kill) that does not follow the events."""
        return AsyncAgentSession(self._client, await self.get(session_id))

    async def get(self, session_id: str) -> SessionInfo:
        return SessionInfo(**await self._client.request("GET", f"{self._path}/{session_id}"))

    async def list(self) -> list[SessionInfo]:
        """This sandbox's sessions, including ended ones (they survive server restarts)."""
        reply = await self._client.request("GET", self._path)
        return [SessionInfo(**s) for s in reply["sessions"]]

    async def model_info(self) -> ModelInfo:
        """Which model upstream the server's agents talk to: ``upstream == "simulator"`` means Cove's model
        simulator, whose token counts and costs are simulated."""
        return ModelInfo(**await self._client.request("GET", "/v1/model"))


async def list_agent_sessions(
    *, status: str | None = None, sandbox_id: str | None = None, url: str | None = None, api_key: str | None = None
) -> list[SessionInfo]:
    """Agent sessions across every sandbox of the server (they survive server restarts)."""
    client = AsyncClient(url, api_key)
    params = {k: v for k, v in {"status": status, "sandbox_id": sandbox_id}.items() if v}
    try:
        reply = await client.request("GET", "/v1/agent-sessions", params=params)
    finally:
        await client.aclose()
    return [SessionInfo(**s) for s in reply["sessions"]]
