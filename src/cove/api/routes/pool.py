"""Routes for the warm pool: look at it (and wait for it to fill), or drain it.

Benchmarks and tests wait on ``GET /v1/pool?wait=...`` to know a create will be a claim; operators drain the
pool before maintenance, and the test harness drains it so no pooled sandbox outlives a test server.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.services.pool import WarmPool
from cove.wire.pool import PoolInfo

router = APIRouter(prefix="/v1/pool", tags=["pool"])
MAX_WAIT = 60.0


def _info(pool: WarmPool) -> PoolInfo:
    return PoolInfo(size=pool.size, ready=pool.ready, filling=pool.filling, failures=pool.failures)


@router.get("", response_model=PoolInfo)
async def get_pool(
    who: PrincipalDep,
    svc: ServicesDep,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="Seconds to wait for the pool to be full")] = 0,
) -> PoolInfo:
    """The admin's: the pool serves every tenant."""
    pool = svc.sandboxes.warm_pool(who)
    if wait:
        await pool.wait_full(wait)
    return _info(pool)


@router.delete("", response_model=PoolInfo)
async def drain_pool(who: PrincipalDep, svc: ServicesDep) -> PoolInfo:
    """Kill every pooled sandbox and stop refilling until the server restarts; creates start cold."""
    pool = svc.sandboxes.warm_pool(who)
    await pool.drain()
    return _info(pool)
