"""The supervisor's requests for terminals (``guest.ptys``), on its socket.

Plain requests (one JSON frame each way): ``pty_create`` {command, cols, rows, env?, cwd?}, ``pty_list``,
``pty_get`` {pty_id}, ``pty_resize`` {pty_id, cols, rows}, ``pty_signal`` {pty_id, signal}. One streaming request,
``pty_attach`` {pty_id, offset?}, owns its connection: the reply is the terminal's info with ``offset``, where the
replay starts; then output frames (``STDOUT``, with their offsets) from there on, live, and when the program has
exited and its output is all sent, ``{"event": "exit", ...info}``. While attached, the client sends input as
``STDIN`` frames and ``{"op": "resize", cols, rows}`` or ``{"op": "signal", signal}`` JSON frames.

Standard library only (runs inside the sandbox).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from cove.guest.protocol import (
    STDIN,
    STDOUT,
    drain_until_closed,
    encode_json,
    encode_output,
    read_frame,
)
from cove.guest.ptys import PtyError, Terminal, TerminalTable

# How long an attach stream stays open after its exit frame for the client to close it (drain_until_closed).
LINGER_S = 5.0


def _signal_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise PtyError("invalid_request", "'signal' must be a signal number from 1 to 64")
    return value


class TerminalOps:
    """``plain`` maps the plain requests' ops to their handlers; ``attach`` serves ``pty_attach``. ``defaults``
    gives the supervisor's environment and working directory as they are when a terminal is made (a claimed
    sandbox's are its user's)."""

    def __init__(
        self,
        watch_exit: Callable[[int, Callable[[int], None]], None],
        defaults: Callable[[], tuple[dict[str, str], str]],
    ) -> None:
        self.table = TerminalTable(watch_exit)
        self._defaults = defaults
        self.plain: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "pty_create": self._create,
            "pty_list": self._list,
            "pty_get": self._get,
            "pty_resize": self._resize,
            "pty_signal": self._signal,
        }

    async def _create(self, request: dict[str, Any]) -> dict[str, Any]:
        env, cwd = self._defaults()
        extra = request.get("env") or {}
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise PtyError("invalid_request", "'env' must map names to strings")
        command = request.get("command")
        if not isinstance(command, list):
            raise PtyError("invalid_request", "'command' must be a list of strings")
        terminal = self.table.create(
            command,
            cols=request.get("cols"),
            rows=request.get("rows"),
            env={**env, **extra},
            cwd=str(request.get("cwd") or cwd),
        )
        return terminal.info()

    async def _list(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [terminal.info() for terminal in self.table.list()]

    async def _get(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.table.get(request.get("pty_id")).info()

    async def _resize(self, request: dict[str, Any]) -> dict[str, Any]:
        terminal = self.table.get(request.get("pty_id"))
        self.table.resize(terminal, request.get("cols"), request.get("rows"))
        return terminal.info()

    async def _signal(self, request: dict[str, Any]) -> dict[str, Any]:
        terminal = self.table.get(request.get("pty_id"))
        return {"delivered": self.table.signal(terminal, _signal_number(request.get("signal")))}

    async def attach(self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        terminal = self.table.get(request.get("pty_id"))
        offset = request.get("offset")
        if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int) or offset < 0):
            raise PtyError("invalid_request", "'offset' must be a byte offset (a whole number, 0 or more)")
        start = terminal.replay_from(offset)
        writer.write(encode_json({"ok": True, "result": {**terminal.info(), "offset": start}}))
        await writer.drain()
        output = asyncio.create_task(self._send_output(terminal, start, writer))
        inputs = asyncio.create_task(self._take_input(terminal, reader))
        try:
            # The client going away (its input ends) ends the stream as surely as the terminal closing does.
            await asyncio.wait({output, inputs}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (output, inputs):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
        if output.done() and not output.cancelled() and output.exception() is None:
            await drain_until_closed(reader, LINGER_S)

    async def _send_output(self, terminal: Terminal, start: int, writer: asyncio.StreamWriter) -> None:
        async for at, data in self.table.follow(terminal, start):
            writer.write(encode_output(STDOUT, at, data))
            await writer.drain()
        writer.write(encode_json({"event": "exit", **terminal.info()}))
        await writer.drain()

    async def _take_input(self, terminal: Terminal, reader: asyncio.StreamReader) -> None:
        while (frame := await read_frame(reader)) is not None:
            if frame.kind == STDIN:
                self.table.write(terminal, frame.payload)
                continue
            message = frame.json()
            with contextlib.suppress(PtyError, OSError):  # a bad size or signal changes nothing; the stream goes on
                if message.get("op") == "resize":
                    self.table.resize(terminal, message.get("cols"), message.get("rows"))
                elif message.get("op") == "signal":
                    self.table.signal(terminal, _signal_number(message.get("signal")))
