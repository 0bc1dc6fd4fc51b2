"""Terminals inside the sandbox: programs on a pseudo-terminal, owned by the supervisor, re-attachable.

A terminal outlives the connections that watch it, as a tmux session does: its program keeps running when the
client goes away, its output is read as it comes (the program never blocks on a slow or absent reader) and the
last ``RING_BYTES`` of it are kept, so a client that attaches again sees the screen's recent output replayed
before what comes live. Every byte of output has an offset (bytes written since the terminal began); a client that
knows how far it got asks for the rest, and one that fell further behind than the ring reaches is told where its
replay really starts.

The program is a session leader with the terminal as its controlling terminal, so Ctrl-C typed into it is the
terminal's SIGINT to the foreground job, a resize is the kernel's SIGWINCH, and its exit hangs the terminal up.

Standard library only (runs inside the sandbox, in the supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import struct
import subprocess
import termios
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

RING_BYTES = 256 * 1024
READ_CHUNK = 64 * 1024
MAX_TERMINALS = 64  # live ones; ended terminals beyond KEEP_ENDED are forgotten
KEEP_ENDED = 16
MAX_SIZE = 1000  # columns and rows
MAX_TYPED_AHEAD = 1024 * 1024  # input waiting for a program that does not read


class PtyError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _window(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _checked_size(cols: Any, rows: Any) -> tuple[int, int]:
    for name, value in (("cols", cols), ("rows", rows)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
            raise PtyError("invalid_request", f"'{name}' must be a whole number from 1 to {MAX_SIZE}")
    return cols, rows


def _become_terminal_owner() -> None:
    """Runs in the child between fork and exec, after ``setsid``: the terminal on fd 0 becomes its controlling
    terminal (the supervisor has no threads, so a ``preexec_fn`` is safe here)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@dataclass
class Terminal:
    id: str
    pid: int
    command: list[str]
    cols: int
    rows: int
    master: int
    started_at: float
    ring: bytearray = field(default_factory=bytearray)
    written: int = 0  # offset just past the last byte of output
    typed: bytearray = field(default_factory=bytearray)  # input the terminal could not take yet
    exit_code: int | None = None
    exit_signal: int | None = None
    ended_at: float | None = None
    closed: bool = False  # the terminal is gone: no more output, the exit is known
    # Set (and replaced) whenever output arrives or the terminal closes: followers wait on the one they saw.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def info(self) -> dict[str, Any]:
        return {
            "pty_id": self.id,
            "pid": self.pid,
            "command": self.command,
            "cols": self.cols,
            "rows": self.rows,
            "running": self.ended_at is None,
            "exit_code": self.exit_code,
            "signal": self.exit_signal,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "output_bytes": self.written,
        }

    def replay_from(self, offset: int | None) -> int:
        """Where output for a client that has everything before ``offset`` starts (None: the whole ring)."""
        oldest = self.written - len(self.ring)
        return oldest if offset is None else min(max(offset, oldest), self.written)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class TerminalTable:
    """The supervisor's terminals, by id. ``watch_exit(pid, callback)`` hands each program's exit status over
    from the supervisor's reaper, which reaps every child."""

    def __init__(self, watch_exit: Callable[[int, Callable[[int], None]], None]) -> None:
        self._by_id: dict[str, Terminal] = {}
        self._ids = itertools.count(1)
        self._watch_exit = watch_exit

    def create(self, command: list[str], *, cols: Any, rows: Any, env: dict[str, str], cwd: str) -> Terminal:
        cols, rows = _checked_size(cols, rows)
        if not command or not all(isinstance(part, str) for part in command):
            raise PtyError("invalid_request", "'command' must be a non-empty list of strings")
        if sum(1 for t in self._by_id.values() if not t.closed) >= MAX_TERMINALS:
            raise PtyError("quota_exceeded", f"at most {MAX_TERMINALS} terminals may be open in a sandbox")
        master, slave = os.openpty()
        try:
            _window(slave, cols, rows)
            os.set_blocking(master, False)
            process = subprocess.Popen(
                command,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env={"TERM": "xterm-256color", **env},
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_become_terminal_owner,  # no threads in the supervisor
                close_fds=True,
            )
        except BaseException as exc:
            os.close(master)
            raise _refusal(exc, command[0], cwd) from exc
        finally:
            os.close(slave)
        process.returncode = 0  # the supervisor's reaper collects the status, not Popen
        terminal = Terminal(f"pty{next(self._ids)}", process.pid, command, cols, rows, master, time.time())
        self._by_id[terminal.id] = terminal
        asyncio.get_running_loop().add_reader(master, self._readable, terminal)
        self._watch_exit(process.pid, lambda status: self._exited(terminal, status))
        self._forget_ended()
        return terminal

    def get(self, pty_id: Any) -> Terminal:
        terminal = self._by_id.get(pty_id) if isinstance(pty_id, str) else None
        if terminal is None:
            raise PtyError("pty_not_found", f"no terminal {pty_id!r} in this sandbox")
        return terminal

    def list(self) -> list[Terminal]:
        return list(self._by_id.values())

    def resize(self, terminal: Terminal, cols: Any, rows: Any) -> None:
        """The kernel tells the terminal's foreground job (SIGWINCH)."""
        terminal.cols, terminal.rows = _checked_size(cols, rows)
        if not terminal.closed:
            with contextlib.suppress(OSError):
                _window(terminal.master, terminal.cols, terminal.rows)

    def signal(self, terminal: Terminal, signum: int) -> bool:
        """Signal the terminal's session (its program and what it runs in the foreground)."""
        if terminal.ended_at is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(terminal.pid, signum)
        return True

    def write(self, terminal: Terminal, data: bytes) -> None:
        """Input, as if typed. What the terminal cannot take at once waits (up to ``MAX_TYPED_AHEAD`` bytes, more
        is dropped: the program is not reading) and goes in as the terminal drains: the supervisor never blocks."""
        if terminal.closed:
            return
        waiting = bool(terminal.typed)
        terminal.typed += data[: max(0, MAX_TYPED_AHEAD - len(terminal.typed))]
        if not waiting:
            self._flush(terminal)

    def _flush(self, terminal: Terminal) -> None:
        """Write what was typed ahead; what does not fit waits for the terminal to be writable again."""
        try:
            written = os.write(terminal.master, terminal.typed)
        except BlockingIOError:
            written = 0
        except OSError:
            written = len(terminal.typed)  # hung up: the input goes nowhere
        del terminal.typed[:written]
        loop = asyncio.get_running_loop()
        if terminal.typed:
            loop.add_writer(terminal.master, self._flush, terminal)
        else:
            loop.remove_writer(terminal.master)

    async def follow(self, terminal: Terminal, offset: int) -> AsyncIterator[tuple[int, bytes]]:
        """``(offset, data)`` from ``offset`` until the terminal is closed; a reader that falls behind the ring
        skips ahead to its oldest byte (the offsets show the gap)."""
        while True:
            changed = terminal.changed
            if terminal.written > offset:
                offset = max(offset, terminal.written - len(terminal.ring))
                data = bytes(terminal.ring[len(terminal.ring) - (terminal.written - offset) :])
                yield offset, data
                offset += len(data)
            elif terminal.closed:
                return
            else:
                await changed.wait()

    async def wait(self, terminal: Terminal) -> None:
        while not terminal.closed:
            await terminal.changed.wait()

    def _readable(self, terminal: Terminal) -> None:
        try:
            data = os.read(terminal.master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: every holder of the terminal's other end is gone
            data = b""
        if data:
            self._append(terminal, data)
            return
        # Nothing more will come; the program may still run (it closed its end): its exit closes the terminal.
        asyncio.get_running_loop().remove_reader(terminal.master)
        if terminal.ended_at is not None:
            self._close(terminal)

    def _append(self, terminal: Terminal, data: bytes) -> None:
        terminal.ring += data
        del terminal.ring[: max(0, len(terminal.ring) - RING_BYTES)]
        terminal.written += len(data)
        terminal.notify()

    def _exited(self, terminal: Terminal, status: int) -> None:
        """The program is gone: what it wrote last is still queued in the terminal, so it is read now, then the
        terminal is closed (processes it left behind lose it: the kernel hangs them up)."""
        terminal.ended_at = time.time()
        if os.WIFSIGNALED(status):
            terminal.exit_signal = os.WTERMSIG(status)
            terminal.exit_code = 128 + terminal.exit_signal
        else:
            terminal.exit_code = os.WEXITSTATUS(status)
        while True:
            try:
                data = os.read(terminal.master, READ_CHUNK)
            except OSError:
                break
            if not data:
                break
            self._append(terminal, data)
        self._close(terminal)

    def _close(self, terminal: Terminal) -> None:
        if terminal.closed:
            return
        terminal.closed = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(terminal.master)
        loop.remove_writer(terminal.master)
        os.close(terminal.master)
        terminal.typed.clear()
        terminal.notify()

    def _forget_ended(self) -> None:
        ended = [t for t in self._by_id.values() if t.closed]
        for terminal in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._by_id[terminal.id]


def _refusal(exc: BaseException, program: str, cwd: str) -> BaseException:
    """What a failed start is to the client: a missing program or directory, or a refusal."""
    if isinstance(exc, FileNotFoundError):
        return PtyError("command_not_found", f"{program}: command not found")
    if isinstance(exc, NotADirectoryError):
        return PtyError("not_found", f"working directory {cwd} does not exist")
    if isinstance(exc, PermissionError | subprocess.SubprocessError):
        return PtyError("permission_denied", str(exc))
    return exc
