"""The agent runner: one Claude Code conversation as a durable, steerable Cove agent session.

``python -m cove.guest.agent_runner <session_dir>`` runs inside the sandbox, one process per agent session.
It reads ``<session_dir>/config.json``, drives the Claude Code CLI through ``ClaudeSDKClient``, writes every
event to ``<session_dir>/events.jsonl`` (the journal, see :mod:`cove.guest.journal`) and takes commands on
``<session_dir>/control.sock``: newline-delimited JSON, one response line per request::

    {"id": 1, "op": "prompt", "text": "hi"}  -> {"id": 1, "ok": true, "result": {"queued": 0, "turn": 1}}
    {"id": 2, "op": "interrupt"}             -> {"id": 2, "ok": true, "result": {"interrupted": true, ...}}
    {"id": 3, "op": "configure", "cwd": "/"} -> {"id": 3, "ok": true, "result": {<effective config>}}
    {"id": 4, "op": "status"}                -> {"id": 4, "ok": true, "result": {"state": "idle", ...}}
    {"id": 5, "op": "permission", "request_id": "perm_…", "decision": "allow", "by": "key_…"}
                                             -> {"id": 5, "ok": true, "result": {"request_id": …, ...}}
    {"id": 6, "op": "sealed", "turn": 2}     -> {"id": 6, "ok": true, "result": {"sealed": 2}}
    a refused request                        -> {"id": 7, "ok": false, "error": {"code": …, "message": …}}

Semantics worth knowing:

- One prompt is one turn. Prompts are queued FIFO and numbered when they are accepted: ``turn`` in the reply
  is the number the turn will carry, ``queued`` how many turns run before it (0: it starts at once).
- ``interrupt`` aborts the running turn at once (the CLI stops streaming), then answers once the turn has
  ended; its events end ``result``, ``interrupted``, ``turn_complete``. Prompts queued behind it are *kept*
  and run next, in order: an interrupt stops what the agent is doing now, it does not cancel what the user
  already asked for (the server can offer a separate "clear queue" later without changing this).
- ``configure`` validates, records and answers at once; changes take effect from the next turn (a running turn
  finishes with the old settings). ``model`` and ``permission_mode`` are changed on the live CLI; any other
  change reconnects the CLI resuming the same conversation, so no context is lost.
- Tools that need approval (permission mode ``default``, ``acceptEdits`` or ``plan``) wait for an answer given
  through ``permission`` (see :mod:`cove.guest.agent_permissions`); an interrupt denies what is pending.
- Assistant text and thinking are journalled as they stream, as coalesced ``text_delta`` / ``thinking_delta``
  events (see :mod:`cove.guest.agent_deltas`), before the complete ``assistant`` event.
- With ``await_seals`` (the server's sessions), a turn begins only once the server said ``sealed`` for the turn
  before it (0: before the first): it records the workspace then, so that what the turn writes is what its
  ``files_changed`` lists. A prompt may say it too (``"sealed": 2``: the server sealed before sending it). A server
  that says nothing for ``SEAL_WAIT_S`` (restarting) does not hold the agent up. ``status`` names the turn held so
  (``awaiting_seal``).
- Shutdown is by SIGTERM/SIGINT: the CLI is stopped, ``exit`` is journalled, the process exits 0.
  Exit codes: 0 normal, 3 the conversation to resume was not found, 1 any other failure to start (or to
  restart the CLI after it was lost).

Imports: the standard library, ``claude_agent_sdk`` and ``cove.guest`` only — never the server.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import stat
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from claude_agent_sdk import (
    CanUseToolShadowedWarning,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ResultMessage,
    StreamEvent,
    SystemMessage,
)

from cove.guest.agent_config import IN_PLACE, AgentConfig, ConfigError
from cove.guest.agent_deltas import DeltaStream
from cove.guest.agent_errors import RequestError
from cove.guest.agent_messages import message_event
from cove.guest.agent_permissions import SESSION, Permissions
from cove.guest.agent_transcripts import ensure_in_project, last_total_cost
from cove.guest.journal import Journal

__all__ = ["EXIT_OK", "EXIT_RESUME_NOT_FOUND", "EXIT_START_FAILED", "AgentRunner", "main"]

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_RESUME_NOT_FOUND = 3

CONFIG_FILE = "config.json"
JOURNAL_FILE = "events.jsonl"
CONTROL_SOCKET = "control.sock"
# Where the supervisor's forwarder says which loopback port leads to Cove's model proxy.
MODEL_PORT_FILE = "/run/cove/model-port"

# A prompt may carry a pasted file: allow long request lines on the control socket.
_MAX_REQUEST_LINE = 16 * 1024 * 1024
# How long an interrupted turn may take to end before the runner gives up on the CLI and restarts it.
_INTERRUPT_GRACE_S = 5.0
# How long a shutdown waits for the CLI to stop before abandoning it.
_SHUTDOWN_GRACE_S = 15.0
# How long a turn waits for the server's ``sealed`` before it begins anyway (a server restarting, or gone).
SEAL_WAIT_S = 30.0
_USAGE_COUNTERS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class StartError(Exception):
    def __init__(self, code: str, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code


@dataclass
class _Prompt:
    turn: int
    text: str


@dataclass
class _Turn:
    number: int
    prompt: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    interrupt_requested: bool = False
    announced: bool = False  # its turn_started is in the journal


class AgentRunner:
    """Owns the CLI connection, the prompt queue, the journal and the control socket of one session."""

    def __init__(self, session_dir: Path, config: AgentConfig, journal: Journal) -> None:
        self.session_dir = session_dir
        self.config = config
        self.journal = journal
        self.socket_path = session_dir / CONTROL_SOCKET

        self.state = "starting"
        self.claude_session_id: str | None = None
        self._client: ClaudeSDKClient | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False  # we are disconnecting the client on purpose
        self._client_lost = False  # the CLI went away on its own
        self._abort_turn = False  # an interrupt got no answer: restart the CLI

        self._queue: collections.deque[_Prompt] = collections.deque()
        self._turns_assigned = 0
        self._sealed = -1  # the last turn after which the server recorded the workspace (0: before the first)
        self._awaiting: tuple[int, float] | None = None  # (turn, deadline) of a turn waiting for its seal
        self._current: _Turn | None = None
        self._last_turn = 0
        self._pending: dict[str, Any] = {}  # accepted configure changes not yet applied to the CLI

        self._cli_cost_seen = 0.0  # the CLI's running conversation cost, as of its last result
        self._total_usage: dict[str, int] = dict.fromkeys(_USAGE_COUNTERS, 0)
        self._total_cost = 0.0

        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._deltas = DeltaStream(self.emit)
        self._permissions = Permissions(self.emit, lambda: self.config.permission_timeout_s)

        if config.prompt:
            self._enqueue(config.prompt)

    # ------------------------------------------------------------------ events

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        return self.journal.append(type, **fields)

    def _on_stderr(self, line: str) -> None:
        text = line.rstrip("\n")
        if text:
            self.emit("stderr", text=text)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        """Serve until a signal (exit 0) or a failure to start (1, 3); journals ``exit`` either way."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop)
        try:
            server = await self._listen()
        except (OSError, RuntimeError) as error:
            self.emit("error", code="start_failed", message=f"cannot listen on {self.socket_path}: {error}")
            self.emit("exit", exit_code=EXIT_START_FAILED)
            return EXIT_START_FAILED
        drive = asyncio.create_task(self._drive(), name="agent-drive")
        stopped = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({drive, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not drive.done():
                self._wake.set()
                if self.state == "starting":
                    drive.cancel()  # still connecting: nothing to save
                done, _ = await asyncio.wait({drive}, timeout=_SHUTDOWN_GRACE_S)
                if not done:
                    drive.cancel()
                    await asyncio.wait({drive}, timeout=5)
            exit_code = EXIT_OK
            if drive.done() and not drive.cancelled() and drive.exception() is None:
                exit_code = drive.result()
            elif drive.done() and not drive.cancelled():
                failure = drive.exception()
                self.emit("error", code="internal", message=f"{type(failure).__name__}: {failure}")
                exit_code = EXIT_START_FAILED
        finally:
            stopped.cancel()
            server.close()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        self.emit("exit", exit_code=exit_code)
        return exit_code

    def _stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _drive(self) -> int:
        """Connect, then run turns and apply configuration until told to stop."""
        try:
            await self._start()
        except StartError as error:
            self.emit("error", code=error.code, message=error.message)
            return error.exit_code
        try:
            while not self._stopping.is_set():
                if self._client_lost:
                    await self._restart_client("the Claude Code CLI exited unexpectedly; restarted it")
                elif self._pending:
                    await self._apply_pending()
                elif self._queue and self._seal_awaited(self._queue[0].turn):
                    await self._await_seal()
                elif self._queue:
                    await self._run_turn(self._queue.popleft())
                else:
                    self._wake.clear()
                    await self._wake.wait()
        except StartError as error:
            if self._stopping.is_set():
                # A stop signals the runner's whole process group: a CLI being (re)started died of the same SIGTERM.
                return EXIT_OK
            self.emit("error", code=error.code, message=error.message)
            return error.exit_code
        finally:
            await self._disconnect()
        return EXIT_OK

    async def _start(self) -> None:
        config = self.config
        if not _is_dir(config.cwd):
            raise StartError("start_failed", f"cwd {config.cwd!r} is not a directory", EXIT_START_FAILED)
        if config.resume and ensure_in_project(config.resume, config.cwd) is None:
            raise StartError(
                "resume_not_found",
                f"no Claude conversation {config.resume!r} in this sandbox (looked for "
                f"{config.resume}.jsonl under every project of the Claude config dir); not starting a "
                "new conversation in its place",
                EXIT_RESUME_NOT_FOUND,
            )
        # Choosing the id ourselves (the CLI's --session-id) lets `ready` name the conversation up front.
        self.claude_session_id = config.resume if config.resume and not config.fork else str(uuid.uuid4())
        await self._connect()
        info: dict[str, Any] = {}
        if self._client is not None:
            with contextlib.suppress(Exception):
                info = await self._client.get_server_info() or {}
        self.state = "idle"
        self.emit(
            "ready",
            claude_session_id=self.claude_session_id,
            config=config.effective(),
            claude_code_version=info.get("claude_code_version"),
        )

    # ------------------------------------------------------------------ the CLI connection

    def _options(self) -> ClaudeAgentOptions:
        """Options for the next connection, resuming the conversation when it already exists."""
        config = self.config
        sid = self.claude_session_id
        assert sid is not None
        resume: str | None = None
        fork = False
        session_id: str | None = sid
        transcript = ensure_in_project(sid, config.cwd)
        if transcript is not None:
            resume, session_id = sid, None
        elif config.resume and config.fork:
            # Forked, but the fork has no transcript of its own yet: fork the original again, same new id.
            transcript = ensure_in_project(config.resume, config.cwd)
            resume, fork = config.resume, True
        self._cli_cost_seen = last_total_cost(transcript) if transcript is not None else 0.0
        system_prompt: Any = (
            {"type": "preset", "preset": "claude_code", "snapshot": False}
            if config.system_prompt is None
            # snapshot=False: the CLI otherwise pins a session's first system prompt, even across resumes.
            else {"type": "custom", "prompt": config.system_prompt, "snapshot": False}
        )
        return ClaudeAgentOptions(
            cwd=config.cwd,
            model=config.model,
            system_prompt=system_prompt,
            allowed_tools=list(config.allowed_tools or []),
            disallowed_tools=list(config.disallowed_tools or []),
            permission_mode=config.permission_mode,  # type: ignore[arg-type]  # validated in AgentConfig
            max_turns=config.max_turns,
            mcp_servers=dict(config.mcp_servers or {}),
            resume=resume,
            fork_session=fork,
            session_id=session_id,
            stderr=self._on_stderr,
            # Always asked, whatever the mode: a later change of permission mode then needs no new CLI.
            can_use_tool=self._permissions.can_use_tool,
            include_partial_messages=True,
        )

    async def _connect(self) -> None:
        client = ClaudeSDKClient(self._options())
        try:
            await client.connect()
        except Exception as error:
            message = str(error)
            if "No conversation found" in message:
                raise StartError("resume_not_found", message, EXIT_RESUME_NOT_FOUND) from error
            raise StartError(
                "start_failed",
                f"Claude Code did not start: {type(error).__name__}: {message}",
                EXIT_START_FAILED,
            ) from error
        self._client = client
        self._closing = False
        self._client_lost = False
        self._reader = asyncio.create_task(self._read(client), name="agent-read")

    async def _disconnect(self) -> None:
        client, reader = self._client, self._reader
        self._client, self._reader = None, None
        if client is None:
            return
        self._closing = True
        self._permissions.cancel_all("cancelled")  # the CLI that asked is going away
        try:
            await asyncio.wait_for(client.disconnect(), _SHUTDOWN_GRACE_S)
        except Exception as error:
            self.emit("error", code="disconnect_failed", message=f"{type(error).__name__}: {error}")
        if reader is not None:
            reader.cancel()
            await asyncio.wait({reader}, timeout=5)

    async def _restart_client(self, why: str) -> None:
        """Reconnect on the same conversation (configure, or after losing the CLI)."""
        await self._disconnect()
        await self._connect()
        if why:
            self.emit("error", code="cli_restarted", message=why)

    async def _read(self, client: ClaudeSDKClient) -> None:
        try:
            async for message in client.receive_messages():
                self._on_message(message)
        except Exception as error:
            if not self._closing:
                self.emit("error", code="cli_error", message=f"{type(error).__name__}: {error}")
        finally:
            if not self._closing:
                self._client_lost = True
                if self._current is not None:
                    self._finish_turn(None, "the Claude Code CLI went away during the turn")
                self._wake.set()

    # ------------------------------------------------------------------ turns

    def _enqueue(self, text: str) -> _Prompt:
        self._turns_assigned += 1
        prompt = _Prompt(self._turns_assigned, text)
        self._queue.append(prompt)
        self._wake.set()
        return prompt

    async def _run_turn(self, prompt: _Prompt) -> None:
        client = self._client
        assert client is not None
        turn = _Turn(prompt.turn, prompt.text)
        self._current = turn
        self._last_turn = turn.number
        self.state = "running"
        try:
            # The prompt goes to Claude Code first, turn_started to the journal after: the CLI starts working
            # before the server and its clients are woken for the event (on a small machine they compete).
            await client.query(prompt.text)
        except Exception as error:
            self._announce(turn)
            self.emit("error", code="turn_failed", message=f"{type(error).__name__}: {error}")
            self._finish_turn(None, "the prompt could not be sent to Claude Code")
            self._client_lost = True
            return
        self._announce(turn)
        while not turn.done.is_set() and not self._stopping.is_set():
            if self._abort_turn:
                self._abort_turn = False
                self._finish_turn(None, "the turn did not stop after an interrupt; Claude Code was restarted")
                await self._restart_client("")
                return
            self._wake.clear()
            await self._wake.wait()

    def _seal_awaited(self, turn: int) -> bool:
        """Whether ``turn`` must still wait for the server to record the workspace (see ``await_seals``)."""
        if not self.config.await_seals or self._sealed >= turn - 1:
            return False
        if self._awaiting is None or self._awaiting[0] != turn:
            self._awaiting = (turn, asyncio.get_running_loop().time() + SEAL_WAIT_S)
        return asyncio.get_running_loop().time() < self._awaiting[1]

    async def _await_seal(self) -> None:
        assert self._awaiting is not None
        self._wake.clear()
        left = self._awaiting[1] - asyncio.get_running_loop().time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(left, 0))

    def _announce(self, turn: _Turn) -> None:
        if not turn.announced:
            turn.announced = True
            self.emit("turn_started", turn=turn.number, prompt=turn.prompt)

    def _on_message(self, message: Any) -> None:
        if self._current is not None:
            self._announce(self._current)  # never a message of a turn before its turn_started
        if isinstance(message, StreamEvent):
            self._deltas.feed(message.event, message.parent_tool_use_id)
            return
        if isinstance(message, SystemMessage) and message.subtype == "thinking_tokens":
            return  # a running estimate, sent with every thinking delta: thinking_delta events say more, and less often
        if isinstance(message, SystemMessage) and message.subtype == "init":
            sid = message.data.get("session_id")
            if isinstance(sid, str):
                self.claude_session_id = sid
        elif isinstance(message, ResultMessage) and message.session_id:
            self.claude_session_id = message.session_id
        type_, fields = message_event(message)
        with self.journal.together():
            self._deltas.flush()  # a block's deltas before the message that holds it whole
            self.emit(type_, **fields)
            if isinstance(message, ResultMessage) and self._current is not None:
                self._finish_turn(message, None)

    def _finish_turn(self, result: ResultMessage | None, failure: str | None) -> None:
        """End the running turn: ``interrupted`` (if asked for), then ``turn_complete``."""
        turn = self._current
        if turn is None:
            return
        self._announce(turn)
        self._deltas.flush()
        self._permissions.cancel_all("cancelled")  # the turn is over: nothing it asked can be answered any more
        self._current = None
        self.state = "idle"
        usage: dict[str, Any] = dict(result.usage or {}) if result is not None else {}
        cost = 0.0
        if result is not None and result.total_cost_usd is not None:
            # The CLI reports the whole conversation's cost (restored on resume): this turn is the difference.
            total = float(result.total_cost_usd)
            cost = total - self._cli_cost_seen if total >= self._cli_cost_seen else total
            self._cli_cost_seen = total
        for key in _USAGE_COUNTERS:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                self._total_usage[key] += value
        self._total_cost += cost
        if turn.interrupt_requested:
            self.emit("interrupted", turn=turn.number)
        fields: dict[str, Any] = {
            "turn": turn.number,
            "claude_session_id": self.claude_session_id,
            "usage": usage,
            "cost_usd": cost,
            "total_usage": dict(self._total_usage),
            "total_cost_usd": self._total_cost,
            "is_error": failure is not None or bool(result is not None and result.is_error),
            "interrupted": turn.interrupt_requested,
        }
        if failure is not None:
            fields["error"] = failure
        self.emit("turn_complete", **fields)
        turn.done.set()
        self._wake.set()

    # ------------------------------------------------------------------ configuration

    async def _apply_pending(self) -> None:
        changes, self._pending = self._pending, {}
        client = self._client
        assert client is not None
        if set(changes) - IN_PLACE:
            await self._restart_client("")  # the new config (model and mode included) applies on connect
            return
        try:
            if "model" in changes:
                await client.set_model(self.config.model)
            if "permission_mode" in changes:
                await client.set_permission_mode(self.config.permission_mode)  # type: ignore[arg-type]
        except Exception as error:
            self.emit("error", code="configure_failed", message=f"{type(error).__name__}: {error}")

    # ------------------------------------------------------------------ control socket

    async def _listen(self) -> asyncio.Server:
        path = self.socket_path
        if path.exists() or path.is_symlink():
            if stat.S_ISSOCK(path.lstat().st_mode) and _socket_alive(path):
                raise RuntimeError("another runner is serving this session")
            path.unlink()
        server = await asyncio.start_unix_server(self._serve, path=str(path), limit=_MAX_REQUEST_LINE)
        path.chmod(0o600)
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the limit: the stream cannot be resynchronised
                    await self._reply(writer, None, error=RequestError("too_large", "request line too long"))
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                await self._handle_line(writer, line)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle_line(self, writer: asyncio.StreamWriter, line: bytes) -> None:
        request_id: Any = None
        try:
            try:
                request = json.loads(line)
            except ValueError as error:
                raise RequestError("bad_request", f"not a JSON line: {error}") from error
            if not isinstance(request, dict):
                raise RequestError("bad_request", "a request is a JSON object")
            request_id = request.get("id")
            result = await self.handle(request)
        except RequestError as error:
            await self._reply(writer, request_id, error=error)
        except Exception as error:  # a bug must not take the connection (or the runner) down
            await self._reply(writer, request_id, error=RequestError("internal", f"{type(error).__name__}: {error}"))
        else:
            await self._reply(writer, request_id, result=result)

    @staticmethod
    async def _reply(
        writer: asyncio.StreamWriter,
        request_id: Any,
        *,
        result: dict[str, Any] | None = None,
        error: RequestError | None = None,
    ) -> None:
        if error is not None:
            body: dict[str, Any] = {
                "id": request_id,
                "ok": False,
                "error": {"code": error.code, "message": error.message},
            }
        else:
            body = {"id": request_id, "ok": True, "result": result}
        writer.write(json.dumps(body, default=str).encode() + b"\n")
        await writer.drain()

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out one control request; raises :class:`RequestError` to refuse it."""
        op = request.get("op")
        params = {k: v for k, v in request.items() if k not in ("id", "op")}
        if op == "prompt":
            return self._op_prompt(params)
        if op == "interrupt":
            return await self._op_interrupt(params)
        if op == "configure":
            return self._op_configure(params)
        if op == "status":
            return self.status()
        if op == "permission":
            return self._permissions.answer(params)
        if op == "sealed":
            return self._op_sealed(params)
        raise RequestError(
            "unknown_op", f"unknown op {op!r}; expected prompt, interrupt, configure, status, permission or sealed"
        )

    def _op_sealed(self, params: dict[str, Any]) -> dict[str, Any]:
        """The server recorded the workspace after turn ``turn``: the turn after it may begin."""
        self._note_sealed(params.get("turn"), "sealed needs 'turn'")
        self._wake.set()
        return {"sealed": self._sealed}

    def _note_sealed(self, turn: object, needs: str) -> None:
        if isinstance(turn, bool) or not isinstance(turn, int) or turn < 0:
            raise RequestError("invalid_argument", f"{needs}, a whole number (0: before the first)")
        self._sealed = max(self._sealed, turn)

    def _op_prompt(self, params: dict[str, Any]) -> dict[str, Any]:
        """A prompt, queued behind the turn running. ``sealed``: the server recorded the workspace after that turn
        (it seals before a prompt to an idle session, and says so here rather than in a ``sealed`` of its own)."""
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RequestError("invalid_argument", "prompt needs a non-empty string 'text'")
        if self._stopping.is_set():
            raise RequestError("stopping", "the session is shutting down")
        if "sealed" in params:
            self._note_sealed(params["sealed"], "prompt's 'sealed' must be a turn")
        ahead = len(self._queue) + (1 if self._current is not None else 0)
        prompt = self._enqueue(text)
        return {"queued": ahead, "turn": prompt.turn}

    async def _op_interrupt(self, params: dict[str, Any]) -> dict[str, Any]:
        turn, client = self._current, self._client
        if turn is None or client is None:
            return {"interrupted": False}
        turn.interrupt_requested = True
        by = params.get("by")
        self._permissions.cancel_all("interrupted", by if isinstance(by, str) and by else SESSION)
        try:
            await asyncio.wait_for(client.interrupt(), _INTERRUPT_GRACE_S)
        except Exception as error:
            if not turn.done.is_set():
                self.emit("error", code="interrupt_failed", message=f"{type(error).__name__}: {error}")
        try:
            await asyncio.wait_for(turn.done.wait(), _INTERRUPT_GRACE_S)
        except TimeoutError:
            self._abort_turn = True  # the drive loop ends the turn and restarts the CLI
            self._wake.set()
            await turn.done.wait()
        return {"interrupted": True, "turn": turn.number}

    def _op_configure(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            changes = self.config.changed(params)
        except ConfigError as error:
            raise RequestError("invalid_argument", str(error)) from error
        if changes:
            self.config.apply(changes)
            self._pending.update(changes)
            self._wake.set()
        effective = self.config.effective()
        self.emit("configured", changes=changes, config=effective)
        return effective

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "turn": self._current.number if self._current is not None else self._last_turn,
            "queued": len(self._queue),
            "claude_session_id": self.claude_session_id,
            "awaiting_seal": self._held_for_seal(),
        }

    def _held_for_seal(self) -> int | None:
        """The next turn, while it waits for the server's ``sealed`` for the turn before it: what shows from the
        outside that the gate, and nothing else, holds it."""
        waiting = self._awaiting
        if waiting is None or not self._queue or self._queue[0].turn != waiting[0]:
            return None
        return waiting[0] if self._seal_awaited(waiting[0]) else None


def _is_dir(path: str) -> bool:
    return Path(path).is_dir()


def _socket_alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def _model_port(path: str = MODEL_PORT_FILE) -> int | None:
    """The model proxy's port in this sandbox (never blocking: the file is the sandbox's to replace)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        text = os.read(fd, 16) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)
    return int(text) if text.strip().isdigit() and 0 < int(text) < 65536 else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cove.guest.agent_runner <session_dir>", file=sys.stderr)
        return 2
    session_dir = Path(args[0])
    try:
        config = AgentConfig.load(session_dir / CONFIG_FILE)
    except (OSError, ValueError) as error:
        # Without a valid config there is no session id to journal under: stderr is all we have.
        print(f"agent runner: cannot read {session_dir / CONFIG_FILE}: {error}", file=sys.stderr)
        return EXIT_START_FAILED
    journal = Journal(session_dir / JOURNAL_FILE, config.session_id)
    try:
        if "ANTHROPIC_BASE_URL" not in os.environ:
            port = _model_port()
            if port is None:
                journal.append(
                    "error", code="start_failed", message=f"no model access: {MODEL_PORT_FILE} names no port"
                )
                journal.append("exit", exit_code=EXIT_START_FAILED)
                return EXIT_START_FAILED
            os.environ["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        # The permission callback is installed in every mode (see _options); the SDK's warning that the mode
        # makes it unused would only reach the runner's stderr.
        warnings.filterwarnings("ignore", category=CanUseToolShadowedWarning)
        # uvloop: every message of Claude Code passes through this loop (SDK, journal, control socket), on the
        # cores the CLI itself needs; measured about 15% less of the runner's CPU per turn than asyncio's loop.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(AgentRunner(session_dir, config, journal).run())
    finally:
        journal.close()


if __name__ == "__main__":
    sys.exit(main())
