"""AsyncSandbox: the async core of the SDK. The sync ``Sandbox`` drives this same code from a background loop."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from cove.sdk._agent import AsyncAgents
from cove.sdk._checkpoints import CheckpointMethods
from cove.sdk._client import AsyncClient
from cove.sdk._errors import CommandTimeout, ConnectionLost, CoveError, error_from
from cove.sdk._follow import RECONNECT_ATTEMPTS, follow
from cove.sdk._network import AsyncNetwork
from cove.sdk._ports import AsyncPorts
from cove.sdk._pty import AsyncPtys
from cove.sdk._teams import mint_token
from cove.wire import (
    ExecResult,
    FileInfo,
    Limits,
    NetworkMode,
    NetworkPolicy,
    ProcessInfo,
    SandboxInfo,
    Scope,
    TokenCreated,
)

OutputCallback = Callable[[bytes], Any]
ProgressCallback = Callable[[int, int | None], Any]
"""Called as bytes move: ``(bytes so far, total bytes or None when unknown)``."""


@dataclass(frozen=True)
class OutputChunk:
    """Bytes a process wrote; ``offset`` is where they start in their stream, for re-attaching."""

    stream: Literal["stdout", "stderr"]
    data: bytes
    offset: int

    @property
    def text(self) -> str:
        return self.data.decode(errors="replace")


@dataclass(frozen=True)
class ProcessResult:
    """The end of a streamed process, shaped as ``exec.run``'s ``ExecResult``: the same fields under the same
    names (``stdout`` and ``stderr`` as text), but ``oom_killed``, which only ``exec.run`` measures. The raw bytes
    are ``stdout_data`` and ``stderr_data``, and ``process`` is the process's final info."""

    process: ProcessInfo
    stdout_data: bytes
    stderr_data: bytes
    truncated = False  # a stream hands out every byte

    @property
    def process_id(self) -> str:
        return self.process.process_id

    @property
    def exit_code(self) -> int | None:
        return self.process.exit_code

    @property
    def stdout(self) -> str:
        """What the process wrote to stdout while this handle watched, decoded as UTF-8."""
        return self.stdout_data.decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_data.decode(errors="replace")

    @property
    def duration(self) -> float:
        """Seconds from start to exit."""
        return (self.process.ended_at or self.process.started_at) - self.process.started_at

    @property
    def timed_out(self) -> bool:
        return self.process.timed_out

    @property
    def signal(self) -> int | None:
        return self.process.signal


class ProcessHandle:
    """A process streaming over a WebSocket. Iterate it, or pass callbacks; if the connection drops, it
    re-attaches from the last byte it received, so no output is lost or repeated."""

    def __init__(
        self,
        client: AsyncClient,
        sandbox_id: str,
        socket: ClientConnection,
        info: ProcessInfo,
        *,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        offsets: tuple[int, int] = (0, 0),
    ) -> None:
        self._client = client
        self._sandbox_id = sandbox_id
        self._socket = socket
        self.info = info
        self._callbacks = {"stdout": on_stdout, "stderr": on_stderr}
        self._offsets = {"stdout": offsets[0], "stderr": offsets[1]}
        self._buffers = {"stdout": bytearray(), "stderr": bytearray()}
        self._queue: asyncio.Queue[OutputChunk | None] = asyncio.Queue()
        self._exit: asyncio.Future[ProcessInfo] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    @property
    def process_id(self) -> str:
        return self.info.process_id

    @property
    def offsets(self) -> tuple[int, int]:
        """(stdout, stderr) byte offsets after the last chunk received — where a re-attach resumes."""
        return self._offsets["stdout"], self._offsets["stderr"]

    async def _read(self) -> None:
        lost = f"lost the stream of process {self.process_id} and could not resume"
        error = await follow(self._socket, lambda raw: self._handle(json.loads(raw)), self._reattached, lost)
        if error is not None:
            self._fail(error)

    async def _reattached(self) -> ClientConnection:
        self._socket = await self._attach_socket()
        return self._socket

    async def _attach_socket(self) -> ClientConnection:
        socket = await self._client.websocket(
            f"/v1/sandboxes/{self._sandbox_id}/processes/{self.process_id}/ws",
            {"stdout_offset": self._offsets["stdout"], "stderr_offset": self._offsets["stderr"]},
        )
        hello = json.loads(await socket.recv())
        if hello.get("type") == "error":
            raise error_from(0, hello.get("code", "error"), hello.get("message", "attach failed"))
        return socket

    def _handle(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind in ("stdout", "stderr"):
            data = base64.b64decode(message["data"])
            offset = int(message["offset"])
            # A chunk that overlaps what we already have (a re-attach racing the old socket) is trimmed.
            skip = self._offsets[kind] - offset
            if skip >= len(data):
                return False
            data = data[max(skip, 0) :]
            chunk = OutputChunk(kind, data, self._offsets[kind])
            self._offsets[kind] += len(data)
            self._buffers[kind] += data
            callback = self._callbacks[kind]
            if callback is not None:
                callback(data)
            self._queue.put_nowait(chunk)
        elif kind == "exit":
            self.info = ProcessInfo(**message["process"])
            self._queue.put_nowait(None)
            if not self._exit.done():
                self._exit.set_result(self.info)
            return True
        elif kind == "error":
            self._fail(error_from(0, message.get("code", "error"), message.get("message", "stream error")))
            return True
        return False

    def _fail(self, error: CoveError) -> None:
        self._queue.put_nowait(None)
        if not self._exit.done():
            self._exit.set_exception(error)

    async def __aiter__(self) -> AsyncIterator[OutputChunk]:
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                if self._exit.done() and self._exit.exception():
                    raise self._exit.exception()  # type: ignore[misc]
                return
            yield chunk

    async def wait(self) -> ProcessResult:
        info = await self._exit
        if info.timed_out:
            raise CommandTimeout(f"process {info.process_id} timed out and was killed")
        return ProcessResult(info, bytes(self._buffers["stdout"]), bytes(self._buffers["stderr"]))

    async def _send(self, message: dict[str, Any]) -> None:
        """Send on the current connection; if it just dropped, wait for the re-attach and send there. Input to
        a process that has already exited is dropped, as a pipe to it would be."""
        for _ in range(RECONNECT_ATTEMPTS + 1):
            if self._exit.done():
                return
            socket = self._socket
            try:
                await socket.send(json.dumps(message))
                return
            except ConnectionClosed:
                await asyncio.wait({self._exit}, timeout=0.2)
        raise ConnectionLost(f"cannot reach process {self.process_id} to send it input")

    async def send_stdin(self, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        await self._send({"type": "stdin", "data": base64.b64encode(raw).decode()})

    async def close_stdin(self) -> None:
        await self._send({"type": "stdin_close"})

    async def signal(self, signal: str | int = "SIGTERM") -> None:
        await self._send({"type": "signal", "signal": signal})

    async def kill(self) -> None:
        await self.signal("SIGKILL")

    async def close(self) -> None:
        """Stop watching; the process itself keeps running."""
        self._reader.cancel()
        await self._socket.close()


async def _open_stream(
    client: AsyncClient, sandbox_id: str, socket: ClientConnection, **callbacks: Any
) -> ProcessHandle:
    hello = json.loads(await socket.recv())
    if hello.get("type") == "error":
        await socket.close()
        raise error_from(0, hello.get("code", "error"), hello.get("message", "stream refused"))
    return ProcessHandle(client, sandbox_id, socket, ProcessInfo(**hello["process"]), **callbacks)


class AsyncExec:
    """Commands in one sandbox."""

    def __init__(self, client: AsyncClient, sandbox_id: str) -> None:
        self._client = client
        self._path = f"/v1/sandboxes/{sandbox_id}"
        self._sandbox_id = sandbox_id

    async def run(
        self,
        command: str | list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        stdin: str | None = None,
        check_timeout: bool = True,
    ) -> ExecResult:
        """Run to completion. A string runs through bash; a list runs as argv.

        Every process the command started ends with it: ``server &`` inside ``run`` dies when the command
        returns. Start what should keep running with ``exec.background`` (or ``exec.start``).

        >>> result = await sandbox.exec.run("echo hi")
        >>> result.stdout
        'hi\\n'
        """
        body = {"command": command, "env": env or {}, "cwd": cwd, "timeout": timeout, "stdin": stdin}
        result = ExecResult(**await self._client.request("POST", f"{self._path}/exec", json=body))
        if result.timed_out and check_timeout:
            raise CommandTimeout(f"command timed out after {timeout}s: {command!r}")
        return result

    async def start(
        self,
        command: str | list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        tag: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ProcessHandle:
        """Start a process and stream it: stdout/stderr as they come, stdin open until ``close_stdin()``.

        The process outlives the handle; ``attach(handle.process_id)`` picks it up again.
        """
        socket = await self._client.websocket(f"{self._path}/exec/ws")
        body = {"command": command, "env": env or {}, "cwd": cwd, "timeout": timeout, "tag": tag}
        await socket.send(json.dumps(body))
        return await _open_stream(self._client, self._sandbox_id, socket, on_stdout=on_stdout, on_stderr=on_stderr)

    async def background(
        self,
        command: str | list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        tag: str | None = None,
    ) -> ProcessInfo:
        """Start a process that runs on its own, with no stream attached; stdin is /dev/null."""
        body = {
            "command": command,
            "env": env or {},
            "cwd": cwd,
            "timeout": timeout,
            "tag": tag,
            "background": True,
        }
        return ProcessInfo(**await self._client.request("POST", f"{self._path}/exec", json=body))

    async def attach(
        self,
        process_id: str,
        *,
        stdout_offset: int = 0,
        stderr_offset: int = 0,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ProcessHandle:
        """Re-attach to a process: its output from the given byte offsets, then live."""
        socket = await self._client.websocket(
            f"{self._path}/processes/{process_id}/ws",
            {"stdout_offset": stdout_offset, "stderr_offset": stderr_offset},
        )
        return await _open_stream(
            self._client,
            self._sandbox_id,
            socket,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            offsets=(stdout_offset, stderr_offset),
        )

    async def list(self) -> list[ProcessInfo]:
        reply = await self._client.request("GET", f"{self._path}/processes")
        return [ProcessInfo(**p) for p in reply["processes"]]

    async def get(self, process_id: str) -> ProcessInfo:
        return ProcessInfo(**await self._client.request("GET", f"{self._path}/processes/{process_id}"))

    async def kill(self, process_id: str, signal: str | int = "SIGKILL") -> ProcessInfo:
        reply = await self._client.request(
            "POST", f"{self._path}/processes/{process_id}/signal", json={"signal": signal}
        )
        return ProcessInfo(**reply)


async def _chunks_of(
    data: bytes | str | Path | Iterable[bytes] | AsyncIterable[bytes],
) -> AsyncIterator[bytes]:
    if isinstance(data, str):
        yield data.encode()
    elif isinstance(data, bytes):
        yield data
    elif isinstance(data, Path):
        with data.open("rb") as source:
            while chunk := await asyncio.to_thread(source.read, 1024 * 1024):
                yield chunk
    elif isinstance(data, AsyncIterable):
        async for chunk in data:
            yield chunk
    else:
        for chunk in data:
            yield chunk


def _size_of(data: object) -> int | None:
    if isinstance(data, str | bytes):
        return len(data.encode() if isinstance(data, str) else data)
    if isinstance(data, Path):
        return data.stat().st_size
    return None


async def _reporting(
    chunks: AsyncIterator[bytes], total: int | None, on_progress: ProgressCallback
) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in chunks:
        yield chunk
        sent += len(chunk)
        on_progress(sent, total)


class AsyncFiles:
    """Files in one sandbox. Relative paths are relative to /workspace."""

    def __init__(self, client: AsyncClient, sandbox_id: str) -> None:
        self._client = client
        self._path = f"/v1/sandboxes/{sandbox_id}/files"

    async def read(self, path: str) -> bytes:
        return b"".join([chunk async for chunk in self.stream(path)])

    async def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return (await self.read(path)).decode(encoding)

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        """Download in chunks — for files too large to hold in memory."""
        async with self._client.stream_download(self._path, {"path": path}) as (_size, chunks):
            async for chunk in chunks:
                yield chunk

    async def download(self, path: str, destination: str | Path, *, on_progress: ProgressCallback | None = None) -> int:
        """Download to a local file and return its size. ``destination`` appears only once the whole file has
        arrived (the bytes go to a hidden file beside it, renamed at the end): a failed download leaves nothing.

        >>> await sandbox.files.download("results/out.csv", "out.csv")
        """
        target = Path(destination)
        async with self._client.stream_download(self._path, {"path": path}) as (total, chunks):
            partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
            size = 0
            try:
                with partial.open("xb") as out:
                    async for chunk in chunks:
                        await asyncio.to_thread(out.write, chunk)
                        size += len(chunk)
                        if on_progress is not None:
                            on_progress(size, total)
                partial.replace(target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        return size

    async def write(
        self,
        path: str,
        data: bytes | str | Path | Iterable[bytes] | AsyncIterable[bytes],
        *,
        mode: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> FileInfo:
        """Write a file, creating its parent directories; ``data`` may be a local Path or an iterator of
        chunks, which are streamed."""
        params: dict[str, Any] = {"path": path}
        if mode is not None:
            params["mode"] = mode
        chunks = _chunks_of(data)
        if on_progress is not None:
            chunks = _reporting(chunks, _size_of(data), on_progress)
        reply = await self._client.request("PUT", self._path, params=params, content=chunks)
        return FileInfo(**reply)

    async def list(self, path: str = "/workspace") -> list[FileInfo]:
        reply = await self._client.request("GET", f"{self._path}/list", params={"path": path})
        return [FileInfo(**e) for e in reply["entries"]]

    async def stat(self, path: str) -> FileInfo:
        return FileInfo(**await self._client.request("GET", f"{self._path}/stat", params={"path": path}))

    async def exists(self, path: str) -> bool:
        return bool((await self._client.request("GET", f"{self._path}/exists", params={"path": path}))["exists"])

    async def mkdir(self, path: str, *, parents: bool = True) -> FileInfo:
        body = {"path": path, "parents": parents}
        return FileInfo(**await self._client.request("POST", f"{self._path}/mkdir", json=body))

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        await self._client.request("DELETE", self._path, params={"path": path, "recursive": recursive})

    async def rename(self, source: str, destination: str) -> FileInfo:
        body = {"source": source, "destination": destination}
        return FileInfo(**await self._client.request("POST", f"{self._path}/rename", json=body))


class AsyncSandbox(CheckpointMethods):
    """A sandbox on a Cove server.

    >>> async with await AsyncSandbox.create(limits={"memory_mb": 512}) as sandbox:
    ...     print((await sandbox.exec.run("uname -a")).stdout)
    """

    def __init__(self, client: AsyncClient, info: SandboxInfo, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client
        self.info = info
        self.exec = AsyncExec(client, info.id)
        self.files = AsyncFiles(client, info.id)
        self.agent = AsyncAgents(client, info.id)
        self.network = AsyncNetwork(client, info.id)
        self.pty = AsyncPtys(client, info.id)
        self.ports = AsyncPorts(client, info.id)

    @property
    def id(self) -> str:
        return self.info.id

    @classmethod
    async def create(
        cls,
        *,
        env: dict[str, str] | None = None,
        cwd: str = "/workspace",
        timeout: float | None = None,
        idle_timeout: float | None = None,
        labels: dict[str, str] | None = None,
        limits: Limits | dict[str, Any] | None = None,
        network: NetworkMode | NetworkPolicy | dict[str, Any] | None = None,
        from_checkpoint: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: AsyncClient | None = None,
    ) -> AsyncSandbox:
        """Create and start a sandbox; it is running when this returns. With ``from_checkpoint`` it is a fork:
        it starts with that checkpoint's files, in constant time whatever their size.

        ``network``: ``"egress"`` (outbound internet, never the host or private ranges), ``"none"``, ``"host"``
        (if the server allows it), or ``{"mode": "egress", "allow": [...], "deny": [...]}``; left out, the
        server's default (``egress`` unless configured)."""
        owns = client is None
        client = client or AsyncClient(url, api_key)
        body = {
            "env": env or {},
            "cwd": cwd,
            "timeout": timeout,
            "idle_timeout": idle_timeout,
            "labels": labels or {},
            "limits": limits.model_dump() if isinstance(limits, Limits) else (limits or {}),
            "network": network.model_dump() if isinstance(network, NetworkPolicy) else network,
            "from_checkpoint": from_checkpoint,
        }
        try:
            info = SandboxInfo(**await client.request("POST", "/v1/sandboxes", json=body))
        except BaseException:
            if owns:
                await client.aclose()
            raise
        return cls(client, info, owns_client=owns)

    @classmethod
    async def connect(
        cls,
        sandbox_id: str,
        *,
        url: str | None = None,
        api_key: str | None = None,
        client: AsyncClient | None = None,
    ) -> AsyncSandbox:
        owns = client is None
        client = client or AsyncClient(url, api_key)
        try:
            info = SandboxInfo(**await client.request("GET", f"/v1/sandboxes/{sandbox_id}"))
        except BaseException:
            if owns:
                await client.aclose()
            raise
        return cls(client, info, owns_client=owns)

    @classmethod
    async def list(
        cls,
        *,
        state: str | None = None,
        labels: dict[str, str] | None = None,
        tenant_id: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: AsyncClient | None = None,
    ) -> list[SandboxInfo]:
        """The sandboxes this key sees (its tenant's; the admin's: every tenant's, or ``tenant_id``'s)."""
        owns = client is None
        client = client or AsyncClient(url, api_key)
        params: list[tuple[str, Any]] = [("label", f"{k}={v}") for k, v in (labels or {}).items()]
        if state:
            params.append(("state", state))
        if tenant_id:
            params.append(("tenant_id", tenant_id))
        try:
            reply = await client.request("GET", "/v1/sandboxes", params=params)
        finally:
            if owns:
                await client.aclose()
        return [SandboxInfo(**s) for s in reply["sandboxes"]]

    async def refresh(self) -> SandboxInfo:
        self.info = SandboxInfo(**await self._client.request("GET", f"/v1/sandboxes/{self.id}"))
        return self.info

    async def is_running(self) -> bool:
        """Whether the sandbox is running now (asks the server)."""
        return (await self.refresh()).state == "running"

    async def set_timeout(self, timeout: float | None) -> SandboxInfo:
        reply = await self._client.request("POST", f"/v1/sandboxes/{self.id}/timeout", json={"timeout": timeout})
        self.info = SandboxInfo(**reply)
        return self.info

    async def kill(self) -> SandboxInfo:
        self.info = SandboxInfo(**await self._client.request("DELETE", f"/v1/sandboxes/{self.id}"))
        return self.info

    async def create_token(
        self, scopes: Iterable[Scope], *, ttl_s: int = 3600, session_id: str | None = None
    ) -> TokenCreated:
        """A token for this sandbox alone (or one agent session in it), with ``scopes`` among ``read``,
        ``prompt``, ``approve``, ``exec``, ``files`` and ``preview``, for ``ttl_s`` seconds: hand ``.token`` to a
        browser, or to any client as its ``api_key``, without the key behind it. Revoke it with
        ``cove.revoke_token(created.id)``.

        >>> viewer = await sandbox.create_token(["read"], ttl_s=600)
        >>> readonly = await AsyncSandbox.connect(sandbox.id, api_key=viewer.token)
        """
        return await mint_token(self._client, self.id, session_id, scopes, ttl_s)

    async def close(self) -> None:
        """Release the connection pool (the sandbox keeps running)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            with contextlib.suppress(CoveError):
                await self.kill()
        finally:
            await self.close()
