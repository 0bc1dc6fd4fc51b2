"""Which model upstream agents use — for operators, and for tests that inspect the simulator."""

from __future__ import annotations

from fastapi import APIRouter

from cove.api.deps import ServicesDep
from cove.wire import ModelInfo

router = APIRouter(prefix="/v1/model", tags=["model"])


@router.get("", response_model=ModelInfo)
async def model_info(svc: ServicesDep) -> ModelInfo:
    gateway = svc.model
    simulator = gateway.simulator_url
    upstream = gateway.upstream.base_url if gateway.upstream else ""
    return ModelInfo(
        upstream="simulator" if simulator else "anthropic-compatible", base_url=upstream, simulator_url=simulator
    )
