"""A sandbox's network: what it may reach (docs/networking.md), changeable while it runs."""

from __future__ import annotations

from cove.sdk._client import AsyncClient
from cove.wire import NetworkPolicy, SandboxInfo


class AsyncNetwork:
    """``sandbox.network``: the rules of an ``egress`` sandbox, which the server puts in force at once — open
    connections included.

    >>> await sandbox.network.update(allow=["pypi.org", "files.pythonhosted.org"])
    """

    def __init__(self, client: AsyncClient, sandbox_id: str) -> None:
        self._client = client
        self._path = f"/v1/sandboxes/{sandbox_id}/network"

    async def update(self, *, allow: list[str] | None = None, deny: list[str] | None = None) -> NetworkPolicy:
        """Replace the sandbox's ``allow`` and ``deny`` rules (CIDRs or host names such as ``*.github.com``);
        with ``allow`` given, the sandbox reaches only what it names. Returns the policy now in force."""
        body = {"mode": "egress", "allow": allow or [], "deny": deny or []}
        return SandboxInfo(**await self._client.request("PUT", self._path, json=body)).network
