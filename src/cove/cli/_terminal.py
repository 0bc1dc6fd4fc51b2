"""``cove sandbox shell``: this terminal becomes a terminal in the sandbox until its program exits.

The local terminal is put in raw mode, so every key (Ctrl-C, Ctrl-Z, arrows) is sent as it is typed and the
sandbox's terminal does the line editing, echo and signals; the local window's size follows it (SIGWINCH). The
previous mode is put back however the shell ends.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from types import FrameType

from cove.sdk import CoveError, Pty, PtyInfo

READ_BYTES = 64 * 1024


def window_size() -> tuple[int, int]:
    """(columns, rows) of the terminal this runs in; 80 × 24 when there is none."""
    for fd in (sys.stdout.fileno(), sys.stdin.fileno()):
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(fd)
            return size.columns, size.lines
    return 80, 24


@contextlib.contextmanager
def raw_mode() -> Iterator[None]:
    """Stdin in raw mode while the block runs, when it is a terminal."""
    fd = sys.stdin.fileno()
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _forward(terminal: Pty, wake: int, done: threading.Event) -> None:
    """Stdin to the terminal as it comes, and the window's size whenever it changes (``wake`` becomes readable:
    the SIGWINCH handler writes to it, and so does ``run`` once it is ``done``)."""
    stdin = sys.stdin.fileno()
    watched = [stdin, wake]
    with contextlib.suppress(CoveError, OSError, ValueError):
        while not done.is_set():
            ready, _, _ = select.select(watched, [], [])
            if wake in ready:
                os.read(wake, 512)
                if done.is_set():
                    return
                terminal.resize(*window_size())
            if stdin in ready and stdin in watched:
                data = os.read(stdin, READ_BYTES)
                if not data:
                    watched.remove(stdin)  # piped input ran out: the program goes on with what it got
                    continue
                terminal.write(data)


def run(terminal: Pty) -> PtyInfo:
    """Show the terminal here and type into it until its program exits; returns its final info."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    done = threading.Event()

    def wake(_signum: int = 0, _frame: FrameType | None = None) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(wake_write, b"w")

    previous = signal.signal(signal.SIGWINCH, wake)
    forward = threading.Thread(target=_forward, args=(terminal, wake_read, done), name="cove-tty", daemon=True)
    try:
        with raw_mode():
            forward.start()
            out = sys.stdout.buffer
            for chunk in terminal:
                out.write(chunk)
                out.flush()
            return terminal.wait()
    finally:
        signal.signal(signal.SIGWINCH, previous)
        done.set()
        wake()
        forward.join(timeout=1)
        if not forward.is_alive():  # else it is sending what was typed last; the pipe goes with the process
            os.close(wake_read)
            os.close(wake_write)


def exit_status(info: PtyInfo) -> int:
    """What a shell reports for the terminal's program."""
    if info.exit_code is not None:
        return info.exit_code
    return 128 + info.signal if info.signal else 1
