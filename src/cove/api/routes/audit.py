"""The audit trail, for the admin: every call that changed something, newest first, filtered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.api.routes.sandboxes import TenantQuery
from cove.store.audit import AuditQuery
from cove.wire import AuditEntry, AuditPage

router = APIRouter(prefix="/v1/audit", tags=["audit"])
MAX_PAGE = 10_000
Time = Annotated[float | None, Query(ge=0, le=2**40, description="Unix time, in seconds")]


@router.get("", response_model=AuditPage)
async def read_audit(
    who: PrincipalDep,
    svc: ServicesDep,
    tenant_id: TenantQuery = None,
    action: Annotated[str | None, Query(max_length=128, description="e.g. sandboxes.kill_sandbox")] = None,
    since: Time = None,
    until: Time = None,
    before: Annotated[int | None, Query(ge=0, le=2**62, description="Entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
) -> AuditPage:
    query = AuditQuery(tenant_id=tenant_id, action=action, since=since, until=until, before=before, limit=limit + 1)
    entries = await svc.audit.query(who, query)
    return AuditPage(
        entries=[AuditEntry(**entry.__dict__) for entry in entries[:limit]],
        has_more=len(entries) > limit,
    )
