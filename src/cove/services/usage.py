"""UsageService: what a tenant uses now against its quotas, and what its agents have spent."""

from __future__ import annotations

from dataclasses import dataclass

from cove.quotas import Quotas
from cove.services.checkpoints import MIB, CheckpointService
from cove.services.errors import KeyNotFound
from cove.services.keys import KeyService
from cove.services.principal import Access, Principal
from cove.services.sandboxes import SandboxService
from cove.services.sessions import SessionService, SessionUsage


@dataclass(frozen=True)
class TenantUsage:
    tenant_id: str
    quotas: Quotas | None  # None: none (the admin)
    running_sandboxes: int
    running_memory_mb: int
    agent_sessions: int
    checkpoint_mb: float
    agents: SessionUsage


class UsageService:
    def __init__(
        self, keys: KeyService, sandboxes: SandboxService, sessions: SessionService, checkpoints: CheckpointService
    ) -> None:
        self._keys = keys
        self._sandboxes = sandboxes
        self._sessions = sessions
        self._checkpoints = checkpoints

    async def report(self, who: Principal, tenant_id: str | None = None) -> TenantUsage:
        """``who``'s tenant's use, or (for the admin) ``tenant_id``'s."""
        who.require(Access.OWN, doing="read usage")
        tenant = tenant_id or who.tenant_id
        if tenant != who.tenant_id and not (who.admin and self._keys.known(tenant)):
            raise KeyNotFound(f"no tenant {tenant!r}")
        sandboxes = await self._sandboxes.usage(tenant)
        agents = await self._sessions.usage(tenant)
        return TenantUsage(
            tenant_id=tenant,
            quotas=self._keys.quotas(tenant),
            running_sandboxes=sandboxes.running,
            running_memory_mb=sandboxes.memory_mb,
            agent_sessions=agents.live,
            checkpoint_mb=await self._checkpoints.usage(tenant) / MIB,
            agents=agents,
        )
