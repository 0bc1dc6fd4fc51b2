"""Routes for a sandbox's published ports: expose, list, close. Their previews are served by ``api.previews``."""

from __future__ import annotations

from fastapi import APIRouter, Request

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
        public=exposure.public,
    )


@router.post("", response_model=PortInfo)
async def expose_port(sandbox_id: str, body: PortExpose, request: Request, svc: ServicesDep) -> PortInfo:
    """Publish a port of the sandbox at a preview URL; exposing it again changes only ``public``."""
    return port_info(await svc.ports.expose(sandbox_id, body.port, body.public), request, svc)


@router.get("", response_model=PortList)
async def list_ports(sandbox_id: str, request: Request, svc: ServicesDep) -> PortList:
    return PortList(ports=[port_info(e, request, svc) for e in await svc.ports.list(sandbox_id)])


@router.delete("/{port}", response_model=PortInfo)
async def close_port(sandbox_id: str, port: Port, request: Request, svc: ServicesDep) -> PortInfo:
    """Unpublish a port: its preview answers 404 from now on, and requests still running on it end."""
    return port_info(await svc.ports.close(sandbox_id, port), request, svc)
