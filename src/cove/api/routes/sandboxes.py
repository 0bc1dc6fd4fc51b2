"""Routes for sandboxes themselves: create, get, list, kill, timeout, network."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cove.api.auth import PrincipalDep
from cove.api.deps import Services, ServicesDep
from cove.runtime.netpolicy import NetworkPolicy, PolicyError
from cove.runtime.spec import Limits, SandboxSpec
from cove.services.errors import InvalidRequest
from cove.services.principal import Access
from cove.services.sandboxes import CreateRequest
from cove.store.sandboxes import SandboxRecord
from cove.wire import Limits as WireLimits
from cove.wire import NetworkMode, SandboxCreate, SandboxInfo, SandboxList, SandboxState, TimeoutUpdate
from cove.wire import NetworkPolicy as WireNetworkPolicy

router = APIRouter(prefix="/v1/sandboxes", tags=["sandboxes"])
TenantQuery = Annotated[
    str | None, Query(max_length=64, description="Only this tenant's (the admin's filter; a key's id)")
]


def sandbox_info(record: SandboxRecord, svc: Services) -> SandboxInfo:
    spec = SandboxSpec.from_json(record.spec)
    return SandboxInfo(
        id=record.id,
        state=record.state,
        stop_reason=record.stop_reason,
        created_at=record.created_at,
        expires_at=record.expires_at,
        idle_timeout=record.idle_timeout,
        last_active_at=record.last_active_at,
        labels=record.labels,
        env=spec.env,
        cwd=spec.cwd,
        network=_wire_network(spec.network or NetworkPolicy()),
        limits=WireLimits(**spec.limits.__dict__),
        enforced_limits=record.enforced,
        driver="bwrap",
        storage_driver=svc.sandboxes.storage.name,
        oom_kills=svc.sandboxes.oom_kills(record.id) if record.state == "running" else 0,
        disk_used_bytes=svc.sandboxes.disk_used.get(record.id),
        tenant_id=record.tenant_id,
    )


def _wire_network(policy: NetworkPolicy) -> WireNetworkPolicy:
    return WireNetworkPolicy(mode=policy.mode, allow=[str(r) for r in policy.allow], deny=[str(r) for r in policy.deny])


def network_policy(value: NetworkMode | WireNetworkPolicy | None) -> NetworkPolicy | None:
    """The request's network, or None for the server's default; a bad rule is a 422 that names it."""
    if value is None:
        return None
    try:
        return NetworkPolicy.parse(value if isinstance(value, str) else value.model_dump())
    except PolicyError as exc:
        where = "" if str(exc).startswith("network") else "network."
        raise InvalidRequest(f"{where}{exc}", code="validation_error") from exc


def _labels(selectors: list[str]) -> dict[str, str]:
    labels = {}
    for selector in selectors:
        key, sep, value = selector.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"label filter {selector!r} must look like key=value")
        labels[key] = value
    return labels


@router.post("", status_code=201, response_model=SandboxInfo)
async def create_sandbox(body: SandboxCreate, who: PrincipalDep, svc: ServicesDep) -> SandboxInfo:
    network = network_policy(body.network)
    spec = SandboxSpec(env=body.env, cwd=body.cwd, network=network, limits=Limits(**body.limits.model_dump()))
    request = CreateRequest(spec=spec, timeout=body.timeout, idle_timeout=body.idle_timeout, labels=body.labels)
    if body.from_checkpoint:
        return sandbox_info(await svc.checkpoints.fork(who, body.from_checkpoint, request), svc)
    return sandbox_info(await svc.sandboxes.create(who, request), svc)


@router.get("", response_model=SandboxList)
async def list_sandboxes(
    who: PrincipalDep,
    svc: ServicesDep,
    state: SandboxState | None = None,
    label: Annotated[list[str], Query(description="Filter by label, as key=value; repeatable")] = [],  # noqa: B006
    tenant_id: TenantQuery = None,
) -> SandboxList:
    records = await svc.sandboxes.list(who, state=state, labels=_labels(label), tenant_id=tenant_id)
    return SandboxList(sandboxes=[sandbox_info(r, svc) for r in records])


@router.get("/{sandbox_id}", response_model=SandboxInfo)
async def get_sandbox(sandbox_id: str, who: PrincipalDep, svc: ServicesDep) -> SandboxInfo:
    return sandbox_info(await svc.sandboxes.authorize(who, sandbox_id, Access.VIEW), svc)


@router.delete("/{sandbox_id}", response_model=SandboxInfo)
async def kill_sandbox(sandbox_id: str, who: PrincipalDep, svc: ServicesDep) -> SandboxInfo:
    return sandbox_info(await svc.sandboxes.kill(who, sandbox_id), svc)


@router.post("/{sandbox_id}/timeout", response_model=SandboxInfo)
async def set_timeout(sandbox_id: str, body: TimeoutUpdate, who: PrincipalDep, svc: ServicesDep) -> SandboxInfo:
    return sandbox_info(await svc.sandboxes.set_timeout(who, sandbox_id, body.timeout), svc)


@router.put("/{sandbox_id}/network", response_model=SandboxInfo)
async def update_network(sandbox_id: str, body: WireNetworkPolicy, who: PrincipalDep, svc: ServicesDep) -> SandboxInfo:
    """New allow and deny rules for a running ``egress`` sandbox, in force at once (open connections included)."""
    policy = network_policy(body)
    assert policy is not None
    return sandbox_info(await svc.sandboxes.update_network(who, sandbox_id, policy), svc)
