"""Published ports of a sandbox (``sandbox.ports``): a port an app listens on inside, reachable through Cove at a
preview URL."""

from __future__ import annotations

from cove.sdk._client import AsyncClient
from cove.wire import PortInfo


class AsyncPorts:
    """Preview URLs for the ports of one sandbox. Works in every network mode, ``"none"`` included: Cove reaches
    the port through the sandbox's supervisor.

    >>> preview = await sandbox.ports.expose(8000)
    >>> httpx.get(preview.url, headers={"X-Cove-Preview-Token": preview.token})
    """

    def __init__(self, client: AsyncClient, sandbox_id: str) -> None:
        self._client = client
        self._path = f"/v1/sandboxes/{sandbox_id}/ports"

    async def expose(self, port: int, *, public: bool = False) -> PortInfo:
        """Publish ``port`` at ``url``. A private preview (the default) opens only with its ``token``: the
        ``X-Cove-Preview-Token`` header, or ``?token=`` once in a browser (a cookie then keeps it open); a public
        one opens for anyone who can reach the server. Exposing a port again only changes ``public``; its URL and
        token stay. Whatever listens on the port (on 127.0.0.1 or 0.0.0.0) answers; nothing needs to listen yet.
        """
        return PortInfo(**await self._client.request("POST", self._path, json={"port": port, "public": public}))

    async def list(self) -> list[PortInfo]:
        """The sandbox's exposed ports, lowest first."""
        return [PortInfo(**p) for p in (await self._client.request("GET", self._path))["ports"]]

    async def close(self, port: int) -> PortInfo:
        """Unpublish ``port``: its preview answers 404 from now on (``PortNotFound`` if it was not exposed).
        Ports are also closed when the sandbox stops."""
        return PortInfo(**await self._client.request("DELETE", f"{self._path}/{port}"))
