"""PtyService: terminals in a sandbox — create, list, resize, signal, and attach to their bytes.

The supervisor owns each terminal (``guest.ptys``): it outlives every client and every server restart, and keeps
its recent output, so attaching again replays what the screen showed last. This service only relays.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cove.runtime.guest_client import GuestError, GuestUnavailable, ProcessStream
from cove.services.errors import CoveServiceError, PtyNotFound, Unavailable
from cove.services.principal import Access, Principal
from cove.services.sandboxes import SandboxService


@dataclass(frozen=True)
class PtyRequest:
    command: list[str]
    cols: int
    rows: int
    env: dict[str, str] | None = None
    cwd: str | None = None


def _refused(exc: GuestError) -> CoveServiceError:
    if exc.code == "pty_not_found":
        return PtyNotFound(exc.message)
    return CoveServiceError(exc.message, code=exc.code)


class PtyService:
    """A sandbox's terminals are its tenant's, as the sandbox is: the sandbox lookup decides who reaches them.
    Seeing them takes ``read``; making one, typing into it, resizing or signalling it takes ``exec`` (a terminal
    runs whatever is typed)."""

    def __init__(self, sandboxes: SandboxService) -> None:
        self._sandboxes = sandboxes

    async def _request(self, who: Principal, access: Access, sandbox_id: str, op: str, **fields: Any) -> Any:
        return await self._sandboxes.ask(who, access, sandbox_id, op, _refused, **fields)

    async def create(self, who: Principal, sandbox_id: str, request: PtyRequest) -> dict[str, Any]:
        fields = {"command": request.command, "cols": request.cols, "rows": request.rows}
        info: dict[str, Any] = await self._request(
            who, Access.EXEC, sandbox_id, "pty_create", **fields, env=request.env or {}, cwd=request.cwd
        )
        return info

    async def list(self, who: Principal, sandbox_id: str) -> list[dict[str, Any]]:
        ptys: list[dict[str, Any]] = await self._request(who, Access.READ, sandbox_id, "pty_list")
        return ptys

    async def get(self, who: Principal, sandbox_id: str, pty_id: str) -> dict[str, Any]:
        info: dict[str, Any] = await self._request(who, Access.READ, sandbox_id, "pty_get", pty_id=pty_id)
        return info

    async def resize(self, who: Principal, sandbox_id: str, pty_id: str, cols: int, rows: int) -> dict[str, Any]:
        size = {"cols": cols, "rows": rows}
        info: dict[str, Any] = await self._request(who, Access.EXEC, sandbox_id, "pty_resize", pty_id=pty_id, **size)
        return info

    async def signal(self, who: Principal, sandbox_id: str, pty_id: str, signum: int) -> dict[str, Any]:
        """Signal the terminal's program; answers the terminal as it is then (under ``exec`` alone: whoever may
        signal it may see it)."""
        await self._request(who, Access.EXEC, sandbox_id, "pty_signal", pty_id=pty_id, signal=signum)
        info: dict[str, Any] = await self._request(who, Access.EXEC, sandbox_id, "pty_get", pty_id=pty_id)
        return info

    @contextlib.asynccontextmanager
    async def attach(
        self, who: Principal, sandbox_id: str, pty_id: str, offset: int | None
    ) -> AsyncIterator[ProcessStream]:
        """The terminal's output from ``offset`` (None: all it keeps), then live; input and resizes go back on the
        same stream. ``stream.info["offset"]`` is where the output really starts."""
        guest = await self._sandboxes.guest(who, sandbox_id, Access.EXEC)
        try:
            async with guest.process("pty_attach", pty_id=pty_id, offset=offset) as stream:
                yield stream
        except GuestError as exc:
            raise _refused(exc) from exc
        except GuestUnavailable as exc:
            raise Unavailable(f"sandbox {sandbox_id} is not reachable") from exc
