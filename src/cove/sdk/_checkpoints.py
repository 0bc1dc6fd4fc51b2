"""Checkpoint methods of ``AsyncSandbox``: kept in their own module, mixed into the sandbox class."""

from __future__ import annotations

from cove.sdk._client import AsyncClient
from cove.wire import Checkpoint, SandboxInfo


class CheckpointMethods:
    """Snapshots of the sandbox's files (``/workspace`` and ``/home/user``; not ``/tmp``, not processes)."""

    _client: AsyncClient
    info: SandboxInfo

    async def checkpoint(self, name: str | None = None) -> Checkpoint:
        """Freeze the sandbox, seal what changed since its last checkpoint, thaw; cost follows the change.

        >>> checkpoint = await sandbox.checkpoint("after-setup")
        >>> fork = await AsyncSandbox.create(from_checkpoint=checkpoint.id)
        """
        path = f"/v1/sandboxes/{self.info.id}/checkpoints"
        return Checkpoint(**await self._client.request("POST", path, json={"name": name}))

    async def checkpoints(self) -> list[Checkpoint]:
        """This sandbox's checkpoints, oldest first."""
        reply = await self._client.request("GET", f"/v1/sandboxes/{self.info.id}/checkpoints")
        return [Checkpoint(**c) for c in reply["checkpoints"]]

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return Checkpoint(**await self._client.request("GET", f"/v1/checkpoints/{checkpoint_id}"))

    async def delete_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """Delete a checkpoint. Always allowed: forks of it keep their files, whose layers are freed with the
        last sandbox or checkpoint that uses them."""
        return Checkpoint(**await self._client.request("DELETE", f"/v1/checkpoints/{checkpoint_id}"))

    async def restore(self, checkpoint_id: str) -> SandboxInfo:
        """Put this sandbox's files back to a checkpoint, in place (same id). Every process is killed and a
        fresh supervisor starts: running processes are not part of a checkpoint, and /tmp starts empty."""
        reply = await self._client.request(
            "POST", f"/v1/sandboxes/{self.info.id}/restore", json={"checkpoint_id": checkpoint_id}
        )
        self.info = SandboxInfo(**reply)
        return self.info
