"""FileService: the sandbox's files, streamed through its supervisor so nothing large sits in server memory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from cove.runtime.guest_client import GuestError, GuestUnavailable
from cove.services.errors import CoveServiceError, NotFound, PathNotAllowed, Unavailable
from cove.services.principal import Access, Principal
from cove.services.sandboxes import SandboxService


def _error(exc: GuestError) -> CoveServiceError:
    if exc.code == "path_outside_sandbox":
        return PathNotAllowed(exc.message)
    if exc.code == "not_found":
        return NotFound(exc.message, code="file_not_found")
    return CoveServiceError(exc.message, code=exc.code)


class FileService:
    def __init__(self, sandboxes: SandboxService) -> None:
        self._sandboxes = sandboxes

    async def _request(self, who: Principal, access: Access, sandbox_id: str, op: str, **fields: Any) -> Any:
        return await self._sandboxes.ask(who, access, sandbox_id, op, _error, **fields)

    async def stat(self, who: Principal, sandbox_id: str, path: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(who, Access.READ, sandbox_id, "stat", path=path)
        return result

    async def exists(self, who: Principal, sandbox_id: str, path: str) -> bool:
        return bool(await self._request(who, Access.READ, sandbox_id, "exists", path=path))

    async def list(self, who: Principal, sandbox_id: str, path: str, after: str | None, limit: int) -> dict[str, Any]:
        """A page of a directory's entries, by name: ``entries`` and ``has_more``."""
        fields = {"path": path, "after": after, "limit": limit}
        result: dict[str, Any] = await self._request(who, Access.READ, sandbox_id, "list", **fields)
        return result

    async def mkdir(self, who: Principal, sandbox_id: str, path: str, parents: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(who, Access.FILES, sandbox_id, "mkdir", path=path, parents=parents)
        return result

    async def remove(self, who: Principal, sandbox_id: str, path: str, recursive: bool = False) -> None:
        await self._request(who, Access.FILES, sandbox_id, "remove", path=path, recursive=recursive)

    async def rename(self, who: Principal, sandbox_id: str, source: str, destination: str) -> dict[str, Any]:
        fields = {"source": source, "destination": destination}
        result: dict[str, Any] = await self._request(who, Access.FILES, sandbox_id, "rename", **fields)
        return result

    @contextlib.asynccontextmanager
    async def read(self, who: Principal, sandbox_id: str, path: str) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        guest = await self._sandboxes.guest(who, sandbox_id, Access.READ)
        try:
            async with guest.read_file(path) as (size, chunks):
                yield size, chunks
        except GuestError as exc:
            raise _error(exc) from exc
        except GuestUnavailable as exc:
            raise Unavailable(f"sandbox {sandbox_id} is not reachable") from exc

    async def write(
        self, who: Principal, sandbox_id: str, path: str, chunks: AsyncIterator[bytes], mode: int | None = None
    ) -> dict[str, Any]:
        guest = await self._sandboxes.guest(who, sandbox_id, Access.FILES)
        try:
            return await guest.write_file(path, chunks, mode)
        except GuestError as exc:
            raise _error(exc) from exc
        except GuestUnavailable as exc:
            raise Unavailable(f"sandbox {sandbox_id} stopped during the upload") from exc
