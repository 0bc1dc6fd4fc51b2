"""Routes for API keys (the admin's): make one (its secret shown once), list, change quotas, revoke; and the usage
of a tenant against its quotas (its own, for a tenant's key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.api.routes.sandboxes import TenantQuery
from cove.quotas import Quotas as QuotaValues
from cove.store.keys import KeyRecord
from cove.wire import KeyCreate, KeyCreated, KeyInfo, KeyList, KeyUpdate, Quotas, QuotaUse, Usage, UsageReport

router = APIRouter(prefix="/v1", tags=["keys"])


def wire_quotas(quotas: QuotaValues | None) -> Quotas | None:
    return Quotas.model_validate(quotas.to_json()) if quotas is not None else None


def key_info(record: KeyRecord) -> KeyInfo:
    quotas = QuotaValues.from_json(record.quotas) if record.quotas is not None else None
    return KeyInfo(
        id=record.id,
        name=record.name,
        admin=bool(record.admin),
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        quotas=wire_quotas(quotas),
    )


@router.post("/keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyCreate, who: PrincipalDep, svc: ServicesDep) -> KeyCreated:
    """A tenant's key, with the server's default quotas but those given; the secret is in this reply only."""
    changes = body.quotas.model_dump(exclude_unset=True) if body.quotas is not None else None
    record, secret = await svc.keys.create(who, body.name, changes)
    return KeyCreated(**key_info(record).model_dump(), key=secret)


@router.get("/keys", response_model=KeyList)
async def list_keys(
    who: PrincipalDep,
    svc: ServicesDep,
    include_revoked: Annotated[bool, Query(description="Revoked keys too")] = False,
) -> KeyList:
    return KeyList(keys=[key_info(r) for r in svc.keys.list(who, include_revoked=include_revoked)])


@router.get("/keys/{key_id}", response_model=KeyInfo)
async def get_key(key_id: str, who: PrincipalDep, svc: ServicesDep) -> KeyInfo:
    return key_info(svc.keys.get(who, key_id))


@router.patch("/keys/{key_id}", response_model=KeyInfo)
async def update_key(key_id: str, body: KeyUpdate, who: PrincipalDep, svc: ServicesDep) -> KeyInfo:
    """Change a tenant's quotas: those named, the others kept; in force for what it asks next."""
    return key_info(await svc.keys.set_quotas(who, key_id, body.quotas.model_dump(exclude_unset=True)))


@router.delete("/keys/{key_id}", response_model=KeyInfo)
async def revoke_key(key_id: str, who: PrincipalDep, svc: ServicesDep) -> KeyInfo:
    """Revoke a tenant's key at once: its tokens with it, and every stream they hold open is closed."""
    return key_info(await svc.keys.revoke(who, key_id))


@router.get("/usage", response_model=UsageReport)
async def usage(who: PrincipalDep, svc: ServicesDep, tenant_id: TenantQuery = None) -> UsageReport:
    """A tenant's use against its quotas, and its agents' tokens and cost (the admin: any tenant's)."""
    report = await svc.usage.report(who, tenant_id)
    return UsageReport(
        tenant_id=report.tenant_id,
        quotas=wire_quotas(report.quotas),
        used=QuotaUse(
            running_sandboxes=report.running_sandboxes,
            running_memory_mb=report.running_memory_mb,
            agent_sessions=report.agent_sessions,
            checkpoint_mb=report.checkpoint_mb,
        ),
        agent_usage=Usage(**report.agents.usage),
        metered_usage=Usage(**report.agents.metered_usage),
        total_cost_usd=report.agents.total_cost_usd,
    )
