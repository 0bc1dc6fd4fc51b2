"""``cove sandbox shell`` driven through a real pseudo-terminal, as a person at a terminal drives it: what is
typed reaches the sandbox's shell, Ctrl-C interrupts the command running there (not the CLI), the window's size
follows, and ``exit`` returns with the shell's status and the terminal put back as it was."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

from tests.cli.conftest import cove
from tests.conftest import CoveServer


def _own_terminal() -> None:
    """In the child: the pseudo-terminal on fd 0 becomes its controlling terminal, as a login's is (so that it
    gets SIGWINCH when the window changes)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Screen:
    """The CLI on a pseudo-terminal of its own; ``expect`` reads what it shows."""

    def __init__(self, server: CoveServer, *args: str) -> None:
        self.fd, child = pty.openpty()
        self.resize(100, 30)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cove", *args],
            env={**server.env, "TERM": "xterm"},
            stdin=child,
            stdout=child,
            stderr=child,
            start_new_session=True,
            preexec_fn=_own_terminal,
            close_fds=True,
        )
        os.close(child)
        self.seen = b""

    def resize(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def expect(self, text: str, within: float = 30.0) -> bytes:
        """Read until ``text`` shows; returns what came up to it (and forgets it)."""
        wanted, deadline = text.encode(), time.monotonic() + within
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} did not show; the screen shows {self.seen[-2000:]!r}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:  # the CLI exited and its side of the terminal is gone
                    break
        assert wanted in self.seen, self.seen[-2000:]
        end = self.seen.index(wanted) + len(wanted)
        shown, self.seen = self.seen[:end], self.seen[end:]
        return shown

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.fd)


def test_a_shell_typed_into_interrupted_resized_and_exited(server: CoveServer, sandbox_id: str) -> None:
    screen = Screen(server, "sandbox", "shell", sandbox_id, "--command", "PS1='sbx$ ' bash --norc -i")
    try:
        screen.expect("sbx$ ")
        screen.type("echo typed-$((6*7)) $(stty size)\r")
        screen.expect("typed-42 30 100")
        screen.expect("sbx$ ")

        # The command says it runs once it has the terminal (a job takes it before its program starts): only then
        # is Ctrl-C its, not the shell's. The line's echo shows sleep""ing; the command, sleeping.
        screen.type("sh -c 'echo sleep\"\"ing; exec sleep 600'\r")
        screen.expect("sleeping\r\n")
        screen.type("\x03")  # Ctrl-C: raw mode sends it to the sandbox, where it stops sleep, not the CLI
        screen.expect("sbx$ ")
        screen.type("echo after-$?\r")
        screen.expect("after-130")
        assert screen.process.poll() is None

        # A program in the sandbox that waits for its terminal's SIGWINCH, then says the size it has.
        screen.type(
            "bash -c 'w() { echo resized-$(stty size); exit; }; trap w WINCH; echo wait\"\"ing; sleep 600 & wait'\r"
        )
        screen.expect("waiting\r\n")
        screen.resize(120, 40)  # SIGWINCH here → the CLI's resize → the sandbox's terminal → its SIGWINCH there
        screen.expect("resized-40 120")
        screen.expect("sbx$ ")

        screen.type("exit 5\r")
        assert screen.process.wait(timeout=30) == 5
    finally:
        screen.close()


def test_the_local_terminal_is_put_back(server: CoveServer, sandbox_id: str) -> None:
    screen = Screen(server, "sandbox", "shell", sandbox_id, "--command", "exit 0")
    try:
        before = termios.tcgetattr(screen.fd)
        assert screen.process.wait(timeout=30) == 0
        assert termios.tcgetattr(screen.fd) == before  # echo and line editing again, as before the shell
    finally:
        screen.close()


def test_json_makes_the_terminal_for_someone_else_to_attach_to(server: CoveServer, sandbox_id: str) -> None:
    made = cove(server, "sandbox", "shell", sandbox_id, "--command", "sleep 600", "--json")
    info = json.loads(made.stdout)
    assert info["running"] and info["command"] == ["/bin/bash", "-c", "sleep 600"] and info["pty_id"] == "pty1"
