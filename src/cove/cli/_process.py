"""Following a process from the terminal (``cove sandbox exec`` and ``attach``): its output as it comes, stdin
when asked for, Ctrl-C forwarded to the process, and a second Ctrl-C to detach."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from cove.cli._output import note
from cove.sdk import CoveError, Process

DETACHED = 130  # what a shell reports for a command ended by Ctrl-C


def follow(process: Process, sandbox_id: str) -> int:
    """Print the process's output until it exits; returns the exit code a shell would report for it."""
    interrupts = 0

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            raise KeyboardInterrupt
        note("^C sent to the process (SIGINT); press Ctrl-C again to detach and leave it running")
        process.signal("SIGINT")

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        for chunk in process:
            target = sys.stdout if chunk.stream == "stdout" else sys.stderr
            target.buffer.write(chunk.data)
            target.flush()
        result = process.wait()
    except KeyboardInterrupt:
        process.close()
        note(
            f"detached: process {process.process_id} keeps running in {sandbox_id}. "
            f"Follow it again with `cove sandbox attach {sandbox_id} {process.process_id}`, "
            f"stop it with `cove sandbox kill-process {sandbox_id} {process.process_id}`."
        )
        return DETACHED
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.exit_code is not None:
        return result.exit_code
    return 128 + result.signal if result.signal else 1


def feed_stdin(process: Process, forward: bool) -> None:
    """With ``forward``, copy this command's stdin to the process (in the background) until end-of-file;
    otherwise the process sees end-of-file at once. Never by default: ``cove`` in a ``while read`` loop must
    not swallow the loop's input."""
    if not forward:
        process.close_stdin()
        return

    def pump() -> None:
        try:
            while chunk := os.read(sys.stdin.fileno(), 1024 * 1024):
                process.send_stdin(chunk)
            process.close_stdin()
        except (CoveError, OSError, ValueError):
            pass  # the process ended first: input to it goes nowhere, as it would through a pipe

    threading.Thread(target=pump, name="cove-stdin", daemon=True).start()
