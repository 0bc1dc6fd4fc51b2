"""Processes started inside the sandbox, their output logs, and reaping as PID 1.

Output is appended to one log file per stream before any reader sees it. A reader — the first one or a client
re-attaching after a dropped connection — always reads the file from its byte offset and then waits for more,
so replay and live delivery are one code path and nothing can fall into a gap between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cove.guest.protocol import CHUNK

KEEP_FINISHED = 200


class ProcessError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Process:
    id: str
    pid: int
    command: list[str]
    cwd: str
    log_dir: Path
    tag: str | None
    started_at: float
    stdin: int | None
    timeout: float | None
    exit_code: int | None = None
    exit_signal: int | None = None
    timed_out: bool = False
    ended_at: float | None = None
    open_pipes: int = 2
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    timer: asyncio.TimerHandle | None = None
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.ended_at is not None and self.open_pipes == 0

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.pid,
            "command": self.command,
            "cwd": self.cwd,
            "tag": self.tag,
            "running": self.ended_at is None,
            "exit_code": self.exit_code,
            "signal": self.exit_signal,
            "timed_out": self.timed_out,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "stdout_bytes": _size(self.log_dir / "stdout"),
            "stderr_bytes": _size(self.log_dir / "stderr"),
        }


def _has_more(proc: Process, path: Path, offset: int) -> bool:
    return proc.finished or _size(path) > offset


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class ProcessTable:
    """Every process the supervisor started, by id; reaps all children, orphans included."""

    def __init__(self, log_root: Path) -> None:
        self._log_root = log_root
        self._by_id: dict[str, Process] = {}
        self._by_pid: dict[int, Process] = {}
        self._ids = itertools.count(1)
        self._notifications: set[asyncio.Task[None]] = set()
        self._exit_watchers: dict[int, Callable[[int], None]] = {}  # children started elsewhere (terminals)
        log_root.mkdir(parents=True, exist_ok=True)

    def install_reaper(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGCHLD, self._reap)

    def watch_exit(self, pid: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(wait status)`` when ``pid``, a child this table did not start, is reaped: as PID 1,
        the reaper collects every child, so whoever starts one learns of its exit here."""
        self._exit_watchers[pid] = callback

    def start(
        self,
        command: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        stdin: bool,
        timeout: float | None,
        tag: str | None,
    ) -> Process:
        if not command:
            raise ProcessError("invalid_request", "command must not be empty")
        process_id = f"p{next(self._ids)}"
        log_dir = self._log_root / process_id
        log_dir.mkdir(parents=True)
        for name in ("stdout", "stderr"):
            (log_dir / name).touch()
        loop = asyncio.get_running_loop()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if stdin else (subprocess.DEVNULL, None)
        try:
            popen = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdin=in_r,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as exc:
            raise ProcessError("command_not_found", f"{command[0]}: command not found") from exc
        except NotADirectoryError as exc:
            raise ProcessError("not_found", f"working directory {cwd} does not exist") from exc
        except PermissionError as exc:
            raise ProcessError("permission_denied", str(exc)) from exc
        finally:
            os.close(out_w)
            os.close(err_w)
            if in_w is not None:
                os.close(in_r)
        # We reap children ourselves (see _reap); Popen must not race us for the exit status.
        popen.returncode = 0
        proc = Process(
            id=process_id,
            pid=popen.pid,
            command=command,
            cwd=cwd,
            log_dir=log_dir,
            tag=tag,
            started_at=time.time(),
            stdin=in_w,
            timeout=timeout,
        )
        self._by_id[process_id] = proc
        self._by_pid[popen.pid] = proc
        proc.pumps = [
            loop.create_task(self._pump(proc, fd, log_dir / name))
            for fd, name in ((out_r, "stdout"), (err_r, "stderr"))
        ]
        if timeout:
            proc.timer = loop.call_later(timeout, self._expire, proc)
        self._prune()
        return proc

    def get(self, process_id: str) -> Process:
        try:
            return self._by_id[process_id]
        except KeyError:
            raise ProcessError("process_not_found", f"no process {process_id} in this sandbox") from None

    def list(self) -> list[Process]:
        return list(self._by_id.values())

    def signal(self, process_id: str, signum: int) -> bool:
        proc = self.get(process_id)
        if proc.ended_at is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        return True

    def write_stdin(self, proc: Process, data: bytes) -> None:
        if proc.stdin is None:
            raise ProcessError("stdin_closed", f"stdin of {proc.id} is closed or was not requested")
        try:
            view = memoryview(data)
            while view:
                written = os.write(proc.stdin, view)
                view = view[written:]
        except BrokenPipeError:
            self.close_stdin(proc)

    def close_stdin(self, proc: Process) -> None:
        if proc.stdin is not None:
            os.close(proc.stdin)
            proc.stdin = None

    async def wait(self, proc: Process) -> None:
        async with proc.changed:
            await proc.changed.wait_for(lambda: proc.finished)

    async def follow(self, proc: Process, stream: str, offset: int) -> AsyncIterator[tuple[int, bytes]]:
        """Yield ``(offset, data)`` of one stream from ``offset`` to the end of the process's output."""
        path = proc.log_dir / stream
        with open(path, "rb") as log:
            log.seek(offset)
            while True:
                data = log.read(CHUNK)
                if data:
                    yield offset, data
                    offset += len(data)
                    continue
                if proc.finished:
                    data = log.read(CHUNK)
                    if not data:
                        return
                    yield offset, data
                    offset += len(data)
                    continue
                async with proc.changed:
                    await proc.changed.wait_for(functools.partial(_has_more, proc, path, offset))

    async def _pump(self, proc: Process, fd: int, path: Path) -> None:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        os.set_blocking(fd, False)
        loop.add_reader(fd, readable.set)
        try:
            with open(path, "ab", buffering=0) as log:
                while True:
                    await readable.wait()
                    readable.clear()
                    try:
                        data = os.read(fd, CHUNK)
                    except BlockingIOError:
                        continue
                    if not data:
                        break
                    log.write(data)
                    async with proc.changed:
                        proc.changed.notify_all()
        finally:
            loop.remove_reader(fd)
            os.close(fd)
            proc.open_pipes -= 1
            async with proc.changed:
                proc.changed.notify_all()

    def _expire(self, proc: Process) -> None:
        if proc.ended_at is None:
            proc.timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self._by_pid.pop(pid, None)
            if proc is None:
                watcher = self._exit_watchers.pop(pid, None)
                if watcher is not None:
                    watcher(status)
                continue  # else an orphan re-parented to us, PID 1
            proc.ended_at = time.time()
            if os.WIFSIGNALED(status):
                proc.exit_signal = os.WTERMSIG(status)
                proc.exit_code = 128 + proc.exit_signal
            else:
                proc.exit_code = os.WEXITSTATUS(status)
            if proc.timer is not None:
                proc.timer.cancel()
            # The process leader is gone; its group may not be. Output pipes held open by leftovers would keep
            # readers waiting forever, so the group goes with its leader.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            self.close_stdin(proc)
            self._notifications.add(task := asyncio.get_running_loop().create_task(self._notify(proc)))
            task.add_done_callback(self._notifications.discard)

    async def _notify(self, proc: Process) -> None:
        async with proc.changed:
            proc.changed.notify_all()

    def _prune(self) -> None:
        finished = [p for p in self._by_id.values() if p.finished]
        for proc in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._by_id[proc.id]
            import shutil  # here, not at the top: with zlib, bz2 and lzma, 2.4 ms of every sandbox's start

            shutil.rmtree(proc.log_dir, ignore_errors=True)
