"""The supervisor: PID 1 inside a sandbox, serving exec, processes, files and port connections on a unix socket.

It is started detached from the server, so the sandbox, its processes and their output survive a server crash;
a restarted server simply connects to the socket again. Every connection carries one request (a JSON frame);
plain requests may be followed by more, streaming ones (exec, attach, read, write) own the connection until done,
and ``connect`` (a port's connection, passed as a descriptor: ``cove.guest.ports``) ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import resource
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cove.guest import files, model_forwarder, ports
from cove.guest.processes import Process, ProcessError, ProcessTable
from cove.guest.protocol import (
    CHUNK,
    DATA,
    JSON,
    STDERR,
    STDIN,
    STDOUT,
    ProtocolError,
    drain_until_closed,
    encode_data,
    encode_json,
    encode_output,
    read_frame,
)
from cove.guest.pty_ops import TerminalOps
from cove.guest.ptys import PtyError

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
_SESSION_ID = re.compile(r"ses_[0-9a-f]{16}")
_PR_SET_DUMPABLE = 4
# How long a process stream stays open after its exit frame for the client to close it (see _stream_process).
LINGER_S = 5.0
# Connections the server may open before this process accepts them: a burst of preview requests opens one each
# (asyncio's default is 100; the server waits and tries again past this).
LISTEN_BACKLOG = 1024


class RequestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _require(request: dict[str, Any], key: str, kind: type) -> Any:
    value = request.get(key)
    if not isinstance(value, kind):
        raise RequestError("invalid_request", f"'{key}' must be a {kind.__name__}")
    return value


class Supervisor:
    def __init__(
        self,
        listener: socket.socket,
        run_dir: Path,
        default_cwd: str,
        lifeline: int | None = None,
        ready_fd: int | None = None,
    ) -> None:
        self.listener = listener
        self.run_dir = run_dir
        self.ready_fd = ready_fd
        self.lifeline = lifeline
        self.default_cwd = default_cwd
        self.started_at = time.time()
        self.processes = ProcessTable(run_dir / "procs")
        self._plain: dict[str, Handler] = {
            "ping": self._ping,
            "processes": self._list_processes,
            "process": self._process,
            "signal": self._signal,
            "stat": self._stat,
            "exists": self._exists,
            "list": self._list,
            "mkdir": self._mkdir,
            "remove": self._remove,
            "rename": self._rename,
            "configure": self._configure,
            "prepare_agent": self._prepare_agent,
        }
        self.terminals = TerminalOps(self.processes.watch_exit, lambda: (dict(os.environ), self.default_cwd))
        self._plain.update(self.terminals.plain)

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.processes.install_reaper(loop)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if self.lifeline is not None:
            os.set_blocking(self.lifeline, False)
            loop.add_reader(self.lifeline, self._lifeline_readable, stop)
        # The server bound this socket where the sandbox cannot reach it; listening here makes the connections'
        # peer credentials this process's (the sandbox's uid), which the server checks.
        server = await asyncio.start_unix_server(
            self._connection, sock=self.listener, limit=CHUNK * 4, backlog=LISTEN_BACKLOG
        )
        forwarder = await model_forwarder.start(self.run_dir / "model-port")
        if self.ready_fd is not None:  # the server waits for this byte before it reports the sandbox running
            os.write(self.ready_fd, b"1")
            os.close(self.ready_fd)
        async with server:
            await stop.wait()
        if forwarder is not None:
            loop.remove_reader(forwarder.listener.fileno())
            forwarder.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                frame = await read_frame(reader)
                if frame is None:
                    return
                if frame.kind != JSON:
                    raise ProtocolError("expected a JSON request frame")
                request = frame.json()
                op = request.get("op")
                try:
                    if op in self._plain:
                        result = await self._plain[op](request)
                        writer.write(encode_json({"ok": True, "result": result}))
                        await writer.drain()
                        continue
                    if op in ("exec", "attach"):
                        await self._stream_process(request, reader, writer)
                    elif op == "read":
                        await self._read_file(request, writer)
                    elif op == "write":
                        await self._write_file(request, reader, writer)
                    elif op == "pty_attach":
                        await self.terminals.attach(request, reader, writer)
                    elif op == "connect":
                        await self._connect_port(request, writer)
                    else:
                        raise RequestError("invalid_request", f"unknown op {op!r}")
                    return
                except (RequestError, ProcessError, PtyError, files.FileError, ports.PortError) as exc:
                    writer.write(encode_json({"ok": False, "error": {"code": exc.code, "message": exc.message}}))
                    await writer.drain()
                except (OSError, TypeError, ValueError, OverflowError) as exc:
                    message = f"{type(exc).__name__}: {exc}"
                    writer.write(encode_json({"ok": False, "error": {"code": "invalid_request", "message": message}}))
                    await writer.drain()
        except (ProtocolError, ValueError) as exc:
            with contextlib.suppress(ConnectionError):
                writer.write(encode_json({"ok": False, "error": {"code": "protocol_error", "message": str(exc)}}))
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "uptime": time.time() - self.started_at,
            "processes": len(self.processes.list()),
        }

    def _lifeline_readable(self, stop: asyncio.Event) -> None:
        try:
            data = os.read(self.lifeline, 1) if self.lifeline is not None else b"x"
        except BlockingIOError:
            return
        if not data:  # the server that started this unclaimed sandbox is gone
            stop.set()

    def _claimed(self) -> None:
        if self.lifeline is not None:
            asyncio.get_running_loop().remove_reader(self.lifeline)
            os.close(self.lifeline)
            self.lifeline = None

    async def _configure(self, request: dict[str, Any]) -> dict[str, Any]:
        """Give a sandbox started ahead of time (from the warm pool) its user's environment, working directory
        and rlimits; processes started afterwards inherit them. From now on it belongs to a user and outlives
        the server like any other sandbox."""
        self._claimed()
        env = request.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise RequestError("invalid_request", "'env' must map names to strings")
        os.environ.update(env)
        if request.get("cwd"):
            self.default_cwd = str(request["cwd"])
        set_rlimits(request.get("nproc"), request.get("fsize"))
        return {"cwd": self.default_cwd}

    async def _prepare_agent(self, request: dict[str, Any]) -> dict[str, Any]:
        """Make an agent session's directory and write its runner's ``config.json``, as the sandbox's user:
        the server never creates or writes anything in the sandbox's tree itself."""
        session_id = _require(request, "session_id", str)
        config = _require(request, "config", dict)
        if not _SESSION_ID.fullmatch(session_id):
            raise RequestError("invalid_request", "'session_id' is not a session id")
        directory = self.run_dir / "agents" / session_id
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = directory / "config.json.tmp"
            temporary.write_text(json.dumps(config))
            temporary.replace(directory / "config.json")
        except OSError as exc:
            raise RequestError("agent_unavailable", f"cannot prepare the session directory: {exc}") from exc
        return {"path": str(directory)}

    async def _list_processes(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [proc.info() for proc in self.processes.list()]

    async def _process(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.processes.get(_require(request, "process_id", str)).info()

    async def _signal(self, request: dict[str, Any]) -> dict[str, Any]:
        signum = _require(request, "signal", int)
        delivered = self.processes.signal(_require(request, "process_id", str), signum)
        return {"delivered": delivered}

    async def _stat(self, request: dict[str, Any]) -> dict[str, Any]:
        return files.stat_path(_require(request, "path", str))

    async def _exists(self, request: dict[str, Any]) -> bool:
        return files.exists(_require(request, "path", str))

    async def _list(self, request: dict[str, Any]) -> dict[str, Any]:
        after = request.get("after")
        limit = request.get("limit", files.MAX_LIST)
        if after is not None and not isinstance(after, str):
            raise RequestError("invalid_request", "'after' must be a name")
        if not isinstance(limit, int):
            raise RequestError("invalid_request", "'limit' must be an integer")
        return files.list_dir(_require(request, "path", str), after=after, limit=limit)

    async def _mkdir(self, request: dict[str, Any]) -> dict[str, Any]:
        return files.mkdir(_require(request, "path", str), parents=bool(request.get("parents", True)))

    async def _remove(self, request: dict[str, Any]) -> None:
        files.remove(_require(request, "path", str), recursive=bool(request.get("recursive", False)))

    async def _rename(self, request: dict[str, Any]) -> dict[str, Any]:
        return files.rename(_require(request, "source", str), _require(request, "destination", str))

    def _start(self, request: dict[str, Any]) -> Process:
        command = _require(request, "command", list)
        if not all(isinstance(part, str) for part in command):
            raise RequestError("invalid_request", "'command' must be a list of strings")
        env = dict(os.environ)
        env.update(request.get("env") or {})
        cwd = request.get("cwd") or self.default_cwd
        timeout = request.get("timeout")
        return self.processes.start(
            command,
            env=env,
            cwd=cwd,
            stdin=bool(request.get("stdin")),
            timeout=float(timeout) if timeout else None,
            tag=request.get("tag"),
        )

    async def _stream_process(
        self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if request["op"] == "exec":
            proc = self._start(request)
            if not request.get("follow", True):
                writer.write(encode_json({"ok": True, "result": proc.info()}))
                await writer.drain()
                return
        else:
            proc = self.processes.get(_require(request, "process_id", str))
        writer.write(encode_json({"ok": True, "result": proc.info()}))
        await writer.drain()
        offsets = {
            "stdout": int(request.get("stdout_offset", 0)),
            "stderr": int(request.get("stderr_offset", 0)),
        }

        async def forward(stream: str, kind: bytes) -> None:
            async for offset, data in self.processes.follow(proc, stream, offsets[stream]):
                writer.write(encode_output(kind, offset, data))
                await writer.drain()

        inputs = asyncio.create_task(self._take_input(proc, reader))
        try:
            if request.get("output", True):
                await asyncio.gather(forward("stdout", STDOUT), forward("stderr", STDERR))
            await self.processes.wait(proc)
            writer.write(encode_json({"event": "exit", **proc.info()}))
            await writer.drain()
        finally:
            inputs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inputs
        # The client may still send stdin it wrote before the exit reached it (see drain_until_closed).
        await drain_until_closed(reader, LINGER_S)

    async def _take_input(self, proc: Process, reader: asyncio.StreamReader) -> None:
        """Stdin data and control requests arriving while a process streams."""
        while True:
            frame = await read_frame(reader)
            if frame is None:
                return
            if frame.kind == STDIN:
                self.processes.write_stdin(proc, frame.payload)
                continue
            message = frame.json()
            if message.get("op") == "stdin_close":
                self.processes.close_stdin(proc)
            elif message.get("op") == "signal":
                with contextlib.suppress(TypeError, ValueError, OSError):  # not a signal: nothing to deliver
                    self.processes.signal(proc.id, int(message.get("signal", signal.SIGTERM)))

    async def _connect_port(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        """Connect to a port on the sandbox's loopback and pass the connection to the server (its preview)."""
        port = _require(request, "port", int)
        if not 0 < port < 65536:
            raise RequestError("invalid_request", "'port' must be from 1 to 65535")
        with await ports.connect(port) as connection:
            ports.hand_over(writer.get_extra_info("socket").fileno(), connection)

    async def _read_file(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        fd, size = files.open_for_read(_require(request, "path", str))
        try:
            writer.write(encode_json({"ok": True, "result": {"size": size}}))
            while True:
                data = os.read(fd, CHUNK)
                if not data:
                    break
                writer.write(encode_data(DATA, data))
                await writer.drain()
            writer.write(encode_json({"event": "eof"}))
            await writer.drain()
        finally:
            os.close(fd)

    async def _write_file(
        self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """An upload: data frames up to an ``end`` frame. A write that fails (the disk quota) is answered only
        after the client's ``end``, its remaining data read and dropped: answering at once would make the
        client's next write fail and lose the answer with it."""
        mode = request.get("mode")
        if mode is not None and not isinstance(mode, int):
            raise RequestError("invalid_request", "'mode' must be an integer")
        upload = files.Upload(_require(request, "path", str), mode)
        completed = False
        failure: files.FileError | None = None
        try:
            writer.write(encode_json({"ok": True, "result": {"ready": True}}))
            await writer.drain()
            while True:
                frame = await read_frame(reader)
                if frame is None:
                    raise ProtocolError("upload ended before its end frame")
                if frame.kind == DATA:
                    if failure is None:
                        try:
                            upload.write(frame.payload)
                        except files.FileError as exc:
                            failure = exc
                    continue
                if frame.json().get("op") == "end":
                    break
            if failure is not None:
                raise failure
            result = upload.finish()
            completed = True
            writer.write(encode_json({"ok": True, "result": result}))
            await writer.drain()
        finally:
            upload.close(completed=completed)


def set_rlimits(nproc: int | None, fsize: int | None) -> None:
    """Lower this process's limits; everything it starts from now on inherits them."""
    for limit, value in ((resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_FSIZE, fsize)):
        if value:
            resource.setrlimit(limit, (int(value), int(value)))


def not_traceable() -> None:
    """Keep the sandbox's own processes (same uid) from ptrace-ing this one or opening its /proc entries (its
    descriptors: the socket to the server among them). Children get it back at their exec, as usual."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def main() -> None:
    not_traceable()
    parser = argparse.ArgumentParser(description="Cove sandbox supervisor (runs as PID 1 inside the sandbox)")
    parser.add_argument("--listen-fd", type=int, required=True, help="fd of the socket the server bound for us")
    parser.add_argument("--run-dir", default="/run/cove")
    parser.add_argument("--cwd", default="/workspace")
    parser.add_argument("--nproc", type=int, help="RLIMIT_NPROC, where no pids cgroup is available")
    parser.add_argument("--fsize", type=int, help="RLIMIT_FSIZE in bytes: no single file may outgrow the disk quota")
    parser.add_argument("--lifeline", type=int, help="fd; exit on its EOF unless claimed first (warm pool)")
    parser.add_argument("--ready-fd", type=int, help="fd; one byte is written there once the socket listens")
    args = parser.parse_args()
    set_rlimits(args.nproc, args.fsize)
    listener = socket.socket(fileno=args.listen_fd)
    listener.set_inheritable(False)  # nothing the supervisor starts may hold the server's road into the sandbox
    supervisor = Supervisor(listener, Path(args.run_dir), args.cwd, args.lifeline, args.ready_fd)
    asyncio.run(supervisor.serve())


if __name__ == "__main__":
    main()
