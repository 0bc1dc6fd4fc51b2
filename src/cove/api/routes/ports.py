"""Routes for a sandbox's published ports: expose, list, close. Their previews are served by ``api.previews``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.services.ports import Exposure
from cove.wire import PortExpose, PortInfo, PortList
from cove.wire.bounds import Port

router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}/ports", tags=["ports"])


def port_info(exposure: Exposure, request: Request, svc: ServicesDep) -> PortInfo:
    return PortInfo(
        port=exposure.port,
        url=svc.ports.url(exposure, default_base=str(request.base_url)),
        token=exposure.token,
        expires_at=exposure.expires_at,
        public=exposure.public,
    )


@router.post("", status_code=201, response_model=PortInfo)
async def expose_port(
    sandbox_id: str, body: PortExpose, request: Request, who: PrincipalDep, svc: ServicesDep
) -> PortInfo:
    """Publish a port of the sandbox at a preview URL, with a token (scope ``preview``) that opens it while it is
    private; exposing it again changes ``public`` and gives the same token while it is live. An API key's act."""
    exposure = await svc.ports.expose(who, sandbox_id, body.port, body.public, body.ttl_s)
    return port_info(exposure, request, svc)


@router.get("", response_model=PortList)
async def list_ports(sandbox_id: str, request: Request, who: PrincipalDep, svc: ServicesDep) -> PortList:
    """The sandbox's published ports, with their tokens (an API key's to see)."""
    return PortList(ports=[port_info(e, request, svc) for e in await svc.ports.list(who, sandbox_id)])


@router.delete("/{port}", response_model=PortInfo)
async def close_port(sandbox_id: str, port: Port, request: Request, who: PrincipalDep, svc: ServicesDep) -> PortInfo:
    """Unpublish a port: its preview answers 404 from now on, requests still running on it end, and its token is
    revoked."""
    return port_info(await svc.ports.close(who, sandbox_id, port), request, svc)
