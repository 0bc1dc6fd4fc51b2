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

    async def expose(self, port: int, *, public: bool = False, ttl_s: int | None = None) -> PortInfo:
        """Publish ``port`` at ``url``. A private preview (the default) opens only with a token: ``token`` (a
        scoped token with the ``preview`` scope for this sandbox, for ``ttl_s`` seconds, a day by default; any
        other such token too) in the ``X-Cove-Preview-Token`` header, or ``?token=`` once in a browser (a cookie
        then keeps it open); a public one opens for anyone who can reach the server. Exposing a port again only
        changes ``public``; its URL stays, and its token while it is live. Whatever listens on the port (on
        127.0.0.1 or 0.0.0.0) answers; nothing needs to listen yet. Takes an API key, not a token.
        """
        body: dict[str, object] = {"port": port, "public": public}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return PortInfo(**await self._client.request("POST", self._path, json=body))

    async def list(self) -> list[PortInfo]:
        """The sandbox's exposed ports, lowest first."""
        return [PortInfo(**p) for p in (await self._client.request("GET", self._path))["ports"]]

    async def close(self, port: int) -> PortInfo:
        """Unpublish ``port``: its preview answers 404 from now on (``PortNotFound`` if it was not exposed) and
        its token is revoked. Ports are also closed when the sandbox stops."""
        return PortInfo(**await self._client.request("DELETE", f"{self._path}/{port}"))
