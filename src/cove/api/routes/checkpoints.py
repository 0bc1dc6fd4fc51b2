"""Routes for checkpoints: take, list, get, delete, and restore a sandbox in place (forks go through
``POST /v1/sandboxes`` with ``from_checkpoint``)."""

from __future__ import annotations

from fastapi import APIRouter

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.api.routes.sandboxes import sandbox_info
from cove.store.checkpoints import CheckpointRecord
from cove.wire import Checkpoint, CheckpointCreate, CheckpointList, RestoreRequest, SandboxInfo

router = APIRouter(prefix="/v1", tags=["checkpoints"])


def checkpoint_info(record: CheckpointRecord) -> Checkpoint:
    return Checkpoint(
        id=record.id,
        sandbox_id=record.sandbox_id,
        name=record.name,
        created_at=record.created_at,
        size_bytes=record.size_bytes,
        tenant_id=record.tenant_id,
    )


@router.post("/sandboxes/{sandbox_id}/checkpoints", status_code=201, response_model=Checkpoint)
async def create_checkpoint(
    sandbox_id: str, who: PrincipalDep, svc: ServicesDep, body: CheckpointCreate | None = None
) -> Checkpoint:
    name = body.name if body else None
    return checkpoint_info(await svc.checkpoints.create(who, sandbox_id, name))


@router.get("/sandboxes/{sandbox_id}/checkpoints", response_model=CheckpointList)
async def list_checkpoints(sandbox_id: str, who: PrincipalDep, svc: ServicesDep) -> CheckpointList:
    return CheckpointList(checkpoints=[checkpoint_info(r) for r in await svc.checkpoints.list(who, sandbox_id)])


@router.get("/checkpoints/{checkpoint_id}", response_model=Checkpoint)
async def get_checkpoint(checkpoint_id: str, who: PrincipalDep, svc: ServicesDep) -> Checkpoint:
    return checkpoint_info(await svc.checkpoints.get(who, checkpoint_id))


@router.delete("/checkpoints/{checkpoint_id}", response_model=Checkpoint)
async def delete_checkpoint(checkpoint_id: str, who: PrincipalDep, svc: ServicesDep) -> Checkpoint:
    return checkpoint_info(await svc.checkpoints.delete(who, checkpoint_id))


@router.post("/sandboxes/{sandbox_id}/restore", response_model=SandboxInfo)
async def restore(sandbox_id: str, body: RestoreRequest, who: PrincipalDep, svc: ServicesDep) -> SandboxInfo:
    return sandbox_info(await svc.checkpoints.restore(who, sandbox_id, body.checkpoint_id), svc)
