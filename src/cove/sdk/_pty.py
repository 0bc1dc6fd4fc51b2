"""Terminals: ``sandbox.pty`` — a program on a pseudo-terminal in the sandbox, its bytes over a WebSocket.

The terminal lives in the sandbox, not in the handle: closing the handle (or losing the connection) leaves its
program running, and ``attach`` shows its recent screen again, then what comes live.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from cove.sdk._client import AsyncClient
from cove.sdk._errors import ConnectionLost, CoveError, error_from
from cove.sdk._follow import RECONNECT_ATTEMPTS, follow
from cove.wire.ptys import PtyInfo

OutputCallback = Callable[[bytes], Any]


class PtyHandle:
    """A terminal streaming over a WebSocket: iterate it (or pass ``on_output``) for its bytes, ``write`` to type
    into it. A dropped connection is re-attached from the last byte received, so nothing is lost or repeated that
    the terminal still keeps (its last 256 KiB)."""

    def __init__(
        self,
        client: AsyncClient,
        path: str,
        socket: ClientConnection,
        hello: dict[str, Any],
        on_output: OutputCallback | None = None,
    ) -> None:
        self._client = client
        self._path = path
        self._socket = socket
        self.info = PtyInfo(**hello["pty"])
        self._offset = int(hello["offset"])
        self._on_output = on_output
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._unread = b""  # what ``read_until`` took from the queue past its marker
        self._exit: asyncio.Future[PtyInfo] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    @property
    def pty_id(self) -> str:
        return self.info.pty_id

    @property
    def offset(self) -> int:
        """The offset just past the last byte received: where ``attach(pty_id, offset=…)`` resumes."""
        return self._offset

    async def _read(self) -> None:
        lost = f"lost terminal {self.pty_id} and could not attach again"
        self._end(await follow(self._socket, self._take, self._reattached, lost))

    async def _reattached(self) -> ClientConnection:
        self._socket, hello = await _attached(self._client, self._path, self._offset)
        self._offset = int(hello["offset"])  # further on, if the terminal no longer keeps what was missed
        return self._socket

    def _take(self, frame: str | bytes) -> bool:
        """One frame; True once it ended the stream (the exit)."""
        if isinstance(frame, bytes):
            self._offset += len(frame)
            if self._on_output is not None:
                self._on_output(frame)
            self._queue.put_nowait(frame)
            return False
        message = json.loads(frame)
        kind = message.get("type")
        if kind == "offset":  # the output skips ahead: what lay between was more than the terminal keeps
            self._offset = int(message["offset"])
        elif kind == "exit":
            self.info = PtyInfo(**message["pty"])
            return True
        elif kind == "error":
            raise error_from(0, message.get("code", "error"), message.get("message", "terminal stream error"))
        return False

    def _end(self, error: CoveError | None) -> None:
        self._queue.put_nowait(None)
        if self._exit.done():
            return
        if error is None:
            self._exit.set_result(self.info)
        else:
            self._exit.set_exception(error)

    async def _next(self) -> bytes | None:
        """The next output not yet read; None once the terminal has ended."""
        if self._unread:
            unread, self._unread = self._unread, b""
            return unread
        data = await self._queue.get()
        if data is None:
            self._queue.put_nowait(None)  # every later read sees the end too
            error = self._exit.exception()
            if error is not None:
                raise error
        return data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The terminal's output as it comes (escape sequences and all), until its program exits."""
        while (data := await self._next()) is not None:
            yield data

    async def read_until(self, marker: bytes | str, timeout: float = 10.0) -> bytes:
        """Output up to and including ``marker`` (what follows it stays for the next read); for scripts that type a
        command and wait for its prompt.

        >>> await terminal.write("echo hi\\n")
        >>> await terminal.read_until("hi\\r\\n")
        """
        wanted = marker.encode() if isinstance(marker, str) else marker
        seen = b""
        try:
            async with asyncio.timeout(timeout):
                while wanted not in seen:
                    data = await self._next()
                    if data is None:
                        raise ConnectionLost(f"terminal {self.pty_id} ended before {wanted!r} appeared")
                    seen += data
        except BaseException:
            self._unread = seen + self._unread  # nothing read is lost to the next read
            raise
        end = seen.index(wanted) + len(wanted)
        self._unread = seen[end:]
        return seen[:end]

    async def _send(self, frame: str | bytes) -> None:
        """On the current connection, or the one a re-attach opens; nothing once the terminal has ended."""
        for _ in range(RECONNECT_ATTEMPTS + 1):
            if self._exit.done():
                return
            try:
                await self._socket.send(frame)
                return
            except ConnectionClosed:
                await asyncio.wait({self._exit}, timeout=0.2)
        raise ConnectionLost(f"cannot reach terminal {self.pty_id} to send it input")

    async def write(self, data: str | bytes) -> None:
        """Type into the terminal: ``"ls\\n"``, ``"\\x03"`` (Ctrl-C), ``"\\x04"`` (Ctrl-D)."""
        await self._send(data.encode() if isinstance(data, str) else data)

    async def resize(self, cols: int, rows: int) -> None:
        """The program sees the new size at once (SIGWINCH)."""
        await self._send(json.dumps({"type": "resize", "cols": cols, "rows": rows}))

    async def signal(self, signal: str | int = "SIGINT") -> None:
        """Signal the terminal's program (and what it runs in the foreground)."""
        await self._send(json.dumps({"type": "signal", "signal": signal}))

    async def kill(self) -> None:
        await self.signal("SIGKILL")

    async def wait(self) -> PtyInfo:
        """The terminal's final info, once its program has exited and its output was all received."""
        return await self._exit

    async def close(self) -> None:
        """Stop watching; the terminal's program keeps running (``attach`` to it again)."""
        self._reader.cancel()
        await self._socket.close()


async def _attached(client: AsyncClient, path: str, offset: int | None) -> tuple[ClientConnection, dict[str, Any]]:
    socket = await client.websocket(f"{path}/ws", {"offset": offset} if offset is not None else None)
    hello = json.loads(await socket.recv())
    if hello.get("type") != "attached":
        await socket.close()
        raise error_from(0, hello.get("code", "error"), hello.get("message", "the terminal refused the attach"))
    return socket, hello


class AsyncPtys:
    """``sandbox.pty``: terminals in one sandbox.

    >>> terminal = await sandbox.pty.create(cols=120, rows=40)
    >>> await terminal.write("python3 -q\\n")
    >>> await terminal.read_until(">>> ")
    """

    def __init__(self, client: AsyncClient, sandbox_id: str) -> None:
        self._client = client
        self._path = f"/v1/sandboxes/{sandbox_id}/pty"

    async def create(
        self,
        *,
        command: str | list[str] = "bash -l",
        cols: int = 80,
        rows: int = 24,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_output: OutputCallback | None = None,
    ) -> PtyHandle:
        """Start ``command`` (a bash line, or argv) on a new terminal of ``cols`` × ``rows`` and attach to it."""
        body = {"command": command, "cols": cols, "rows": rows, "env": env or {}, "cwd": cwd}
        info = PtyInfo(**await self._client.request("POST", self._path, json=body))
        return await self.attach(info.pty_id, offset=0, on_output=on_output)

    async def attach(
        self, pty_id: str, *, offset: int | None = None, on_output: OutputCallback | None = None
    ) -> PtyHandle:
        """Attach to a terminal: its recent output (all it keeps; from ``offset`` when given), then live."""
        path = f"{self._path}/{pty_id}"
        socket, hello = await _attached(self._client, path, offset)
        return PtyHandle(self._client, path, socket, hello, on_output)

    async def list(self) -> list[PtyInfo]:
        reply = await self._client.request("GET", self._path)
        return [PtyInfo(**info) for info in reply["ptys"]]

    async def get(self, pty_id: str) -> PtyInfo:
        return PtyInfo(**await self._client.request("GET", f"{self._path}/{pty_id}"))

    async def resize(self, pty_id: str, cols: int, rows: int) -> PtyInfo:
        body = {"cols": cols, "rows": rows}
        return PtyInfo(**await self._client.request("POST", f"{self._path}/{pty_id}/resize", json=body))

    async def kill(self, pty_id: str, signal: str | int = "SIGKILL") -> PtyInfo:
        """Signal a terminal's program (SIGKILL by default: the terminal closes once it is gone)."""
        body = {"signal": signal}
        return PtyInfo(**await self._client.request("POST", f"{self._path}/{pty_id}/signal", json=body))
