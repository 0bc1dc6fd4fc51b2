"""The sync twin of ``sandbox.pty``: the async core driven from the SDK's background loop."""

from __future__ import annotations

import builtins
from collections.abc import Iterator

from cove.sdk._portal import call, iterate
from cove.sdk._pty import AsyncPtys, OutputCallback, PtyHandle
from cove.wire.ptys import PtyInfo


class Pty:
    """A terminal (blocking API): iterate it for its output, ``write`` to type into it.

    >>> terminal = sandbox.pty.create(command="python3 -q")
    >>> terminal.read_until(">>> ")
    >>> terminal.write("6 * 7\\n")
    >>> terminal.read_until("42")
    """

    def __init__(self, handle: PtyHandle) -> None:
        self._handle = handle

    @property
    def pty_id(self) -> str:
        return self._handle.pty_id

    @property
    def offset(self) -> int:
        return self._handle.offset

    @property
    def info(self) -> PtyInfo:
        return self._handle.info

    def __iter__(self) -> Iterator[bytes]:
        return iterate(self._handle.__aiter__())

    def read_until(self, marker: bytes | str, timeout: float = 10.0) -> bytes:
        return call(self._handle.read_until(marker, timeout))

    def write(self, data: str | bytes) -> None:
        call(self._handle.write(data))

    def resize(self, cols: int, rows: int) -> None:
        call(self._handle.resize(cols, rows))

    def signal(self, signal: str | int = "SIGINT") -> None:
        call(self._handle.signal(signal))

    def kill(self) -> None:
        call(self._handle.kill())

    def wait(self) -> PtyInfo:
        return call(self._handle.wait())

    def close(self) -> None:
        call(self._handle.close())


class Ptys:
    """``sandbox.pty`` (blocking API)."""

    def __init__(self, ptys: AsyncPtys) -> None:
        self._ptys = ptys

    def create(
        self,
        *,
        command: str | list[str] = "bash -l",
        cols: int = 80,
        rows: int = 24,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_output: OutputCallback | None = None,
    ) -> Pty:
        """Start ``command`` on a new terminal and attach to it; ``on_output`` runs on the SDK's background thread."""
        return Pty(
            call(self._ptys.create(command=command, cols=cols, rows=rows, env=env, cwd=cwd, on_output=on_output))
        )

    def attach(self, pty_id: str, *, offset: int | None = None, on_output: OutputCallback | None = None) -> Pty:
        return Pty(call(self._ptys.attach(pty_id, offset=offset, on_output=on_output)))

    def list(self) -> builtins.list[PtyInfo]:
        return call(self._ptys.list())

    def get(self, pty_id: str) -> PtyInfo:
        return call(self._ptys.get(pty_id))

    def resize(self, pty_id: str, cols: int, rows: int) -> PtyInfo:
        return call(self._ptys.resize(pty_id, cols, rows))

    def kill(self, pty_id: str, signal: str | int = "SIGKILL") -> PtyInfo:
        return call(self._ptys.kill(pty_id, signal))
