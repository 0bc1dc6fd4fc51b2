"""ExecService: commands in a sandbox — run to completion, stream, run in the background, re-attach."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cove.runtime.guest_client import Exited, GuestError, GuestUnavailable, Output, ProcessStream
from cove.services.errors import CoveServiceError, InvalidRequest, ProcessNotFound, Unavailable
from cove.services.principal import Access, Principal
from cove.services.sandboxes import SandboxService

OUTPUT_CAP = 16 * 1024 * 1024
SIGNALS = {name: int(getattr(signal, name)) for name in dir(signal) if name.startswith("SIG") and "_" not in name}


@dataclass(frozen=True)
class ExecRequest:
    command: list[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: float | None = None
    stdin: bool = False
    tag: str | None = None


@dataclass
class ExecResult:
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    duration: float
    timed_out: bool
    signal: int | None
    oom_killed: bool
    truncated: bool
    process_id: str


def shell(command: str) -> list[str]:
    return ["/bin/bash", "-c", command]


def parse_signal(value: object) -> int:
    """A signal's number from its name or number; anything else a client sent (a WebSocket frame's JSON can be any
    value) is refused as a bad request."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequest(f"a signal is a name such as SIGTERM, or a number; got {type(value).__name__}")
    if isinstance(value, int):
        if not 1 <= value <= signal.SIGRTMAX:
            raise InvalidRequest(f"signal numbers run from 1 to {int(signal.SIGRTMAX)}; got {value}")
        return value
    name = value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()
    if name not in SIGNALS:
        raise InvalidRequest(f"unknown signal {value!r}; use a name such as SIGTERM or SIGKILL, or a number")
    return SIGNALS[name]


def guest_error(exc: GuestError) -> CoveServiceError:
    """Map a supervisor refusal to the domain error the API knows how to answer."""
    if exc.code == "process_not_found":
        return ProcessNotFound(exc.message)
    return CoveServiceError(exc.message, code=exc.code)


class ExecService:
    def __init__(self, sandboxes: SandboxService) -> None:
        self._sandboxes = sandboxes

    def _fields(self, request: ExecRequest) -> dict[str, Any]:
        if not request.command:
            raise InvalidRequest("command must not be empty")
        return {
            "command": request.command,
            "env": request.env or {},
            "cwd": request.cwd,
            "timeout": request.timeout,
            "stdin": request.stdin,
            "tag": request.tag,
        }

    async def run(
        self, who: Principal, sandbox_id: str, request: ExecRequest, stdin: bytes | None = None
    ) -> ExecResult:
        """Run to completion and collect the output (capped; the full output stays re-attachable)."""
        guest = await self._sandboxes.guest(who, sandbox_id, Access.EXEC)
        oom_before = self._sandboxes.oom_kills(sandbox_id)
        started = time.perf_counter()
        out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        truncated = False
        fields = self._fields(request)
        fields["stdin"] = stdin is not None
        try:
            async with guest.process("exec", **fields) as stream:
                if stdin is not None:
                    await stream.send_stdin(stdin)
                    await stream.close_stdin()
                async for item in stream:
                    if isinstance(item, Output):
                        buffer = out[item.stream]
                        room = OUTPUT_CAP - len(buffer)
                        truncated = truncated or len(item.data) > room
                        buffer += item.data[: max(room, 0)]
                    else:
                        info = item.info
        except GuestError as exc:
            raise guest_error(exc) from exc
        except GuestUnavailable as exc:
            raise Unavailable(f"sandbox {sandbox_id} stopped while the command ran") from exc
        killed_by = info.get("signal")
        return ExecResult(
            exit_code=info.get("exit_code"),
            stdout=bytes(out["stdout"]),
            stderr=bytes(out["stderr"]),
            duration=time.perf_counter() - started,
            timed_out=bool(info.get("timed_out")),
            signal=killed_by,
            oom_killed=killed_by == signal.SIGKILL and self._sandboxes.oom_kills(sandbox_id) > oom_before,
            truncated=truncated,
            process_id=str(info["id"]),
        )

    async def start(self, who: Principal, sandbox_id: str, request: ExecRequest) -> dict[str, Any]:
        """Start in the background; the output is kept and can be attached to from offset 0."""
        guest = await self._sandboxes.guest(who, sandbox_id, Access.EXEC)
        try:
            async with guest.process("exec", follow=False, **self._fields(request)) as stream:
                return stream.info
        except GuestError as exc:
            raise guest_error(exc) from exc

    @contextlib.asynccontextmanager
    async def stream(self, who: Principal, sandbox_id: str, request: ExecRequest) -> AsyncIterator[ProcessStream]:
        guest = await self._sandboxes.guest(who, sandbox_id, Access.EXEC)
        try:
            async with guest.process("exec", **self._fields(request)) as stream:
                yield stream
        except GuestError as exc:
            raise guest_error(exc) from exc

    @contextlib.asynccontextmanager
    async def attach(
        self, who: Principal, sandbox_id: str, process_id: str, stdout_offset: int = 0, stderr_offset: int = 0
    ) -> AsyncIterator[ProcessStream]:
        """Follow a process's output from the offsets given; the stream takes its stdin and signals too, so it
        needs what starting a process needs."""
        if stdout_offset < 0 or stderr_offset < 0:
            raise InvalidRequest("offsets must be >= 0")
        guest = await self._sandboxes.guest(who, sandbox_id, Access.EXEC)
        try:
            async with guest.process(
                "attach", process_id=process_id, stdout_offset=stdout_offset, stderr_offset=stderr_offset
            ) as stream:
                yield stream
        except GuestError as exc:
            raise guest_error(exc) from exc

    async def wait(self, who: Principal, sandbox_id: str, process_id: str) -> dict[str, Any]:
        """Wait for a process to end (without its output) and return its final info."""
        guest = await self._sandboxes.guest(who, sandbox_id, Access.READ)
        try:
            async with guest.process("attach", process_id=process_id, output=False) as stream:
                async for item in stream:
                    if isinstance(item, Exited):
                        return item.info
        except GuestError as exc:
            raise guest_error(exc) from exc
        raise GuestUnavailable(f"process {process_id} ended without an exit status")

    async def list(self, who: Principal, sandbox_id: str) -> list[dict[str, Any]]:
        guest = await self._sandboxes.guest(who, sandbox_id, Access.READ)
        result: list[dict[str, Any]] = await guest.request("processes")
        return result

    async def get(self, who: Principal, sandbox_id: str, process_id: str) -> dict[str, Any]:
        guest = await self._sandboxes.guest(who, sandbox_id, Access.READ)
        try:
            result: dict[str, Any] = await guest.request("process", process_id=process_id)
        except GuestError as exc:
            raise guest_error(exc) from exc
        return result

    async def signal(self, who: Principal, sandbox_id: str, process_id: str, signum: int) -> dict[str, Any]:
        """Signal a process; the process as it is then. Who may signal a process sees that much of it (a token
        with ``exec`` alone too: it was told what it ran)."""
        guest = await self._sandboxes.guest(who, sandbox_id, Access.EXEC)
        try:
            await guest.request("signal", process_id=process_id, signal=signum)
            result: dict[str, Any] = await guest.request("process", process_id=process_id)
        except GuestError as exc:
            raise guest_error(exc) from exc
        return result


__all__ = ["ExecRequest", "ExecResult", "ExecService", "Exited", "Output", "parse_signal", "shell"]
